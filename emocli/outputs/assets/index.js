// emocli folder index: one row per review page. Names reach the document through textContent only.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("emocli-data").textContent);
  const body = document.querySelector("#pages tbody");
  const colour = function (label) {
    return /^#[0-9a-fA-F]{6}$/.test(data.colors[label] || "") ? data.colors[label] : "#c8c8c8";
  };
  function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }
  function clock(s) {
    if (s === null || s === undefined) return "";
    const m = Math.floor(s / 60), sec = Math.round(s - 60 * m);
    return Math.floor(m / 60) ? Math.floor(m / 60) + ":" + String(m % 60).padStart(2, "0") + ":" +
      String(sec).padStart(2, "0") : m + ":" + String(sec).padStart(2, "0");
  }
  let total = 0;
  data.pages.forEach(function (page) {
    total += page.utterances;
    const tr = document.createElement("tr");
    const link = document.createElement("a");
    link.href = page.href;  // a relative path emocli percent-encoded: it cannot carry a scheme
    link.textContent = page.video;
    cell(tr, "").appendChild(link);
    cell(tr, page.utterances);
    cell(tr, page.not_speech);
    cell(tr, page.speakers);
    cell(tr, clock(page.duration));
    const top = cell(tr, "");
    page.emotions.slice(0, 3).forEach(function (pair) {
      const pill = document.createElement("span");
      pill.className = "pill";
      pill.style.background = colour(pair[0]);
      pill.textContent = pair[0] + " " + Math.round(100 * pair[1] / Math.max(page.utterances, 1)) + "%";
      top.appendChild(pill);
    });
    body.appendChild(tr);
  });
  document.getElementById("summary").textContent = data.pages.length + " videos, " + total + " utterances";
})();
