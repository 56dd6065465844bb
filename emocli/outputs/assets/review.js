// emocli review page. Everything it shows comes from the JSON block above and reaches the document through
// textContent (never innerHTML), so subtitle text, speaker and file names stay text.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("emocli-data").textContent);
  const LABELS = data.labels, COLORS = data.colors, NOT_SPEECH = "not speech";
  const col = {};
  data.columns.forEach(function (name, i) { col[name] = i; });
  const rows = data.rows.map(function (r, k) {
    return {k: k, index: r[col.index], turn: r[col.turn], start: r[col.start], end: r[col.end],
            speaker: r[col.speaker], text: r[col.text], emotion: r[col.emotion], confidence: r[col.confidence],
            probs: r[col.probabilities], source: r[col.source], nonSpeech: r[col.non_speech],
            face: r[col.face_emotion], faceConfidence: r[col.face_confidence], faceFrames: r[col.face_frames],
            voice: data.voices ? r[col.voice_emotion] : null, voiceConfidence: data.voices ? r[col.voice_confidence] : null};
  });
  const duration = Math.max(data.duration || 0, rows.reduce(function (m, r) { return Math.max(m, r.end); }, 0), 1);
  const $ = function (id) { return document.getElementById(id); };
  const video = $("video"), list = $("list"), spacer = $("spacer"), track = $("track");
  const SVG = "http://www.w3.org/2000/svg";
  const colour = function (label) { return /^#[0-9a-fA-F]{6}$/.test(COLORS[label] || "") ? COLORS[label] : "#c8c8c8"; };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clock(s) {
    const m = Math.floor(s / 60), sec = s - 60 * m, h = Math.floor(m / 60);
    const ss = (sec < 10 ? "0" : "") + sec.toFixed(1);
    return h ? h + ":" + String(m % 60).padStart(2, "0") + ":" + ss : m + ":" + ss;
  }

  // ---- corrections: kept in this browser, per video and per output (another run's page starts afresh)
  const KEY = "emocli-corrections:" + data.video + ":" + data.hash;
  let corrections = {};
  try {
    const kept = JSON.parse(window.localStorage.getItem(KEY) || "{}");
    if (kept && typeof kept === "object") corrections = kept;
  } catch (e) { /* no storage (private window): corrections last as long as the page */ }
  function save() {
    try { window.localStorage.setItem(KEY, JSON.stringify(corrections)); }
    catch (e) { $("review-count").textContent += " (this browser does not keep them: export before closing)"; }
  }
  function label(r) { return Object.prototype.hasOwnProperty.call(corrections, r.k) ? corrections[r.k] : r.emotion; }
  function corrected(r) { return Object.prototype.hasOwnProperty.call(corrections, r.k); }

  // ---- header, legend, filters
  document.title = data.video + " — emotions (emocli)";
  $("title").textContent = data.video;
  const labelled = rows.filter(function (r) { return r.emotion; }).length;
  const model = data.model || {};
  $("meta").textContent = labelled + " utterances" + (rows.length > labelled ? ", " + (rows.length - labelled) +
    " not speech" : "") + " · " + clock(duration) + (model.name ? " · model " + model.name : "") +
    (model.modalities ? " (" + model.modalities.join("+") + ")" : "") +
    (model.test_weighted_f1 ? ", MELD test weighted F1 " + model.test_weighted_f1 : "") + " · emocli";
  if (data.faces) document.body.classList.add("faces");
  if (data.voices) document.body.classList.add("voices");
  LABELS.forEach(function (name, i) {
    const pill = el("span", null, (i + 1) + " " + name);
    pill.style.background = colour(name);
    $("legend").appendChild(pill);
    $("f-emotion").appendChild(new Option(name, name));
  });
  $("f-emotion").appendChild(new Option(NOT_SPEECH, NOT_SPEECH));
  $("key-labels").textContent = LABELS.map(function (n, i) { return (i + 1) + " " + n; }).join(", ");
  const speakers = Array.from(new Set(rows.map(function (r) { return r.speaker; }))).sort();
  speakers.forEach(function (s) { $("f-speaker").appendChild(new Option(s || "(no speaker)", s)); });
  const cueStyle = el("style");  // caption colours: ::cue(.joy) etc. (the labels and colours are emocli's own)
  cueStyle.textContent = LABELS.map(function (n) { return "::cue(." + n + "){color:" + colour(n) + "}"; }).join("\n");
  document.head.appendChild(cueStyle);

  // ---- the video and its caption track
  video.src = data.src;
  video.addEventListener("error", function () {
    const box = $("missing");
    box.hidden = false;
    box.textContent = "The video did not load from " + decodeURIComponent(data.src) +
      " (the page finds it by that path relative to itself: keep the two together).";
  });
  const captions = video.addTextTrack("captions", "emotions", "en");
  captions.mode = "showing";
  const Cue = window.VTTCue || window.TextTrackCue;
  const cues = {};
  function cueEscape(s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
  function setCue(r) {
    if (cues[r.k]) captions.removeCue(cues[r.k]);
    const name = label(r), who = r.speaker ? r.speaker + ": " : "";
    let text = cueEscape(who + r.text);
    if (name && name !== NOT_SPEECH) {
      const conf = corrected(r) ? " (corrected)" : " " + r.confidence.toFixed(2);
      text = "<c." + name + ">[" + name + conf + "] " + text + "</c>";
    }
    const cue = new Cue(r.start, Math.max(r.end, r.start + 0.05), text);
    cue.id = String(r.k);
    captions.addCue(cue);
    cues[r.k] = cue;
  }
  rows.forEach(setCue);

  // ---- the timeline: one lane per emotion (and the faces' and the voice's lanes)
  const lanes = LABELS.slice();
  if (data.faces) lanes.push("face");
  if (data.voices) lanes.push("voice");
  const LANE = 14, WIDTH = 1000;
  lanes.forEach(function (name) { $("lanes").appendChild(el("div", null, name)); });
  track.setAttribute("viewBox", "0 0 " + WIDTH + " " + lanes.length * LANE);
  track.style.height = lanes.length * LANE + "px";
  let playhead = null;
  function rect(x, w, lane, fill, opacity, k) {
    const node = document.createElementNS(SVG, "rect");
    node.setAttribute("x", x.toFixed(2));
    node.setAttribute("y", lane * LANE + 1);
    node.setAttribute("width", Math.max(w, 0.8).toFixed(2));
    node.setAttribute("height", LANE - 2);
    node.setAttribute("fill", fill);
    node.setAttribute("fill-opacity", opacity.toFixed(2));
    node.setAttribute("class", "cue");
    node.dataset.k = k;
    return node;
  }
  function drawTimeline() {
    while (track.firstChild) track.removeChild(track.firstChild);
    const scale = WIDTH / duration;
    rows.forEach(function (r) {
      const name = label(r), lane = LABELS.indexOf(name);
      if (lane >= 0) {
        const shape = rect(r.start * scale, (r.end - r.start) * scale, lane, colour(name),
                           corrected(r) ? 1 : 0.25 + 0.75 * (r.confidence || 0), r.k);
        const title = document.createElementNS(SVG, "title");
        title.textContent = clock(r.start) + " " + name + ": " + r.text;
        shape.appendChild(title);
        track.appendChild(shape);
      }
      if (data.faces && r.face) {
        track.appendChild(rect(r.start * scale, (r.end - r.start) * scale, lanes.indexOf("face"), colour(r.face),
                               0.25 + 0.75 * (r.faceConfidence || 0), r.k));
      }
      if (data.voices && r.voice) {
        track.appendChild(rect(r.start * scale, (r.end - r.start) * scale, lanes.indexOf("voice"), colour(r.voice),
                               0.25 + 0.75 * (r.voiceConfidence || 0), r.k));
      }
    });
    playhead = document.createElementNS(SVG, "line");
    playhead.setAttribute("class", "playhead");
    playhead.setAttribute("y1", 0);
    playhead.setAttribute("y2", lanes.length * LANE);
    track.appendChild(playhead);
    movePlayhead();
  }
  function movePlayhead() {
    const x = (video.currentTime / duration * WIDTH).toFixed(2);
    playhead.setAttribute("x1", x);
    playhead.setAttribute("x2", x);
  }
  track.addEventListener("click", function (e) {
    const k = e.target.dataset ? e.target.dataset.k : undefined;
    if (k !== undefined) { select(Number(k), true); return; }
    const box = track.getBoundingClientRect();
    seek(Math.max(0, Math.min(1, (e.clientX - box.left) / box.width)) * duration);
  });

  // ---- per-speaker totals
  function drawTotals() {
    const table = $("totals");
    while (table.firstChild) table.removeChild(table.firstChild);
    const head = el("tr");
    head.appendChild(el("th", null, "speaker"));
    head.appendChild(el("th", null, "total"));
    LABELS.forEach(function (n) {
      const th = el("th", null, n.slice(0, 4));
      th.title = n;
      th.style.color = colour(n);
      head.appendChild(th);
    });
    table.appendChild(head);
    const counts = {};
    rows.forEach(function (r) {
      const name = label(r);
      if (!name || name === NOT_SPEECH) return;
      const who = r.speaker || "(no speaker)";
      counts[who] = counts[who] || {total: 0};
      counts[who][name] = (counts[who][name] || 0) + 1;
      counts[who].total += 1;
    });
    Object.keys(counts).sort(function (a, b) { return counts[b].total - counts[a].total; }).forEach(function (who) {
      const tr = el("tr");
      tr.appendChild(el("td", null, who));
      tr.appendChild(el("td", null, counts[who].total));
      LABELS.forEach(function (n) { tr.appendChild(el("td", null, counts[who][n] || "")); });
      table.appendChild(tr);
    });
  }

  // ---- the list (virtualised: only the rows in view are in the document)
  const ROW = parseFloat(getComputedStyle(document.documentElement).getPropertyValue("--row")) || 34;
  let shown = rows, selected = null, current = null;
  function applyFilters() {
    const emotion = $("f-emotion").value, speaker = $("f-speaker").value;
    const minimum = Number($("f-confidence").value), onlyCorrected = $("f-corrected").checked;
    $("f-confidence-value").textContent = minimum.toFixed(2);
    shown = rows.filter(function (r) {
      const name = label(r) || NOT_SPEECH;
      return (!emotion || name === emotion) && ($("f-speaker").selectedIndex === 0 || r.speaker === speaker) &&
        (minimum === 0 || (r.confidence !== null && r.confidence >= minimum)) && (!onlyCorrected || corrected(r));
    });
    spacer.style.height = shown.length * ROW + "px";
    $("shown").textContent = "showing " + shown.length + " of " + rows.length;
    drawRows();
  }
  ["f-emotion", "f-speaker", "f-confidence", "f-corrected"].forEach(function (id) {
    $(id).addEventListener("input", applyFilters);
    $(id).addEventListener("change", applyFilters);
  });
  function bar(r) {
    const box = el("span", "bar");
    if (!r.probs) return box;
    box.title = LABELS.map(function (n, i) { return n + " " + r.probs[i].toFixed(2); }).join(", ");
    r.probs.forEach(function (p, i) {
      const part = el("i");
      part.style.width = (100 * p).toFixed(1) + "%";
      part.style.background = colour(LABELS[i]);
      box.appendChild(part);
    });
    return box;
  }
  function labelPicker(r) {
    const pick = el("select");
    pick.setAttribute("aria-label", "label of utterance " + r.index);
    if (!r.emotion) pick.appendChild(new Option("— (" + (r.nonSpeech || "unlabelled") + ")", ""));
    LABELS.forEach(function (n) { pick.appendChild(new Option(n, n)); });
    pick.appendChild(new Option(NOT_SPEECH, NOT_SPEECH));
    pick.value = label(r) || "";
    const name = label(r);
    if (name && name !== NOT_SPEECH) { pick.style.background = colour(name); pick.style.color = "#fff"; }
    if (corrected(r)) {
      pick.classList.add("fixed");
      pick.title = "model: " + (r.emotion || "unlabelled") + " (" + (label(r) === r.emotion ? "confirmed" : "corrected") + ")";
    }
    pick.addEventListener("change", function () { setCorrection(r.k, pick.value || undefined); });
    pick.addEventListener("click", function (e) { e.stopPropagation(); });
    return pick;
  }
  function rowNode(r, i) {
    const node = el("div", "row");
    node.style.top = i * ROW + "px";
    node.dataset.k = r.k;
    if (!r.emotion) node.classList.add("nonspeech");
    if (r.k === current) node.classList.add("current");
    if (r.k === selected) node.classList.add("selected");
    node.appendChild(el("span", "time", clock(r.start)));
    node.appendChild(el("span", "speaker", r.speaker));
    const text = el("span", "text", r.text);
    text.title = r.text;
    node.appendChild(text);
    const cell = el("span", "label");
    cell.appendChild(labelPicker(r));
    node.appendChild(cell);
    node.appendChild(el("span", "confidence", r.confidence === null ? "" : r.confidence.toFixed(2)));
    node.appendChild(bar(r));
    node.appendChild(el("span", "source", r.source));
    if (data.faces) {
      node.appendChild(el("span", "face-col", r.face ? r.face + " " + r.faceConfidence.toFixed(2) :
        (r.faceFrames === 0 ? "no face" : "")));
    }
    if (data.voices) {
      node.appendChild(el("span", "voice-col", r.voice ? r.voice + " " + r.voiceConfidence.toFixed(2) :
        (r.emotion ? "no voice" : "")));
    }
    node.addEventListener("click", function () { select(r.k, true); });
    return node;
  }
  function drawRows() {
    const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 6);
    const last = Math.min(shown.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW) + 6);
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) frag.appendChild(rowNode(shown[i], i));
    while (spacer.firstChild) spacer.removeChild(spacer.firstChild);
    spacer.appendChild(frag);
  }
  let pendingDraw = false;
  list.addEventListener("scroll", function () {
    if (pendingDraw) return;
    pendingDraw = true;
    window.requestAnimationFrame(function () { pendingDraw = false; drawRows(); });
  });
  function reveal(k) {
    const i = shown.findIndex(function (r) { return r.k === k; });
    if (i < 0) return;
    if (i * ROW < list.scrollTop) list.scrollTop = i * ROW;
    else if ((i + 1) * ROW > list.scrollTop + list.clientHeight) list.scrollTop = (i + 1) * ROW - list.clientHeight;
  }

  // ---- playing, seeking, selecting
  function seek(t) { video.currentTime = t; sync(); }
  function select(k, andSeek) {
    selected = k;
    reveal(k);
    if (andSeek) seek(rows[k].start); else drawRows();
  }
  function playing(t) {  // the utterance on screen at t (the latest to start, among those that cover t)
    let found = null;
    for (let i = 0; i < rows.length; i++) {
      if (rows[i].start > t) break;
      if (t < rows[i].end) found = rows[i].k;
    }
    return found;
  }
  function sync() {
    movePlayhead();
    const now = playing(video.currentTime);
    if (now === current) return;
    current = now;
    const r = now === null ? null : rows[now];
    const name = r ? label(r) : null;
    const pill = $("now-label");
    pill.textContent = r ? (name || r.nonSpeech || "") : "";
    pill.className = r ? "pill" + (name && name !== NOT_SPEECH ? "" : " none") : "";
    pill.style.background = name && name !== NOT_SPEECH ? colour(name) : "";
    $("now-text").textContent = r ? (r.speaker ? r.speaker + ": " : "") + r.text : "";
    if (r && $("f-follow").checked && !video.paused) reveal(now);
    drawRows();
  }
  video.addEventListener("timeupdate", sync);
  video.addEventListener("seeked", sync);

  function setCorrection(k, name) {
    if (k === null || k === undefined) return;
    if (name === undefined) delete corrections[k]; else corrections[k] = name;
    save();
    setCue(rows[k]);
    drawTimeline();
    drawTotals();
    applyFilters();
    counts();
    if (k === current) { current = null; sync(); }
  }
  function counts() {
    const done = Object.keys(corrections).length;
    const changed = rows.filter(function (r) { return corrected(r) && label(r) !== r.emotion; }).length;
    $("review-count").textContent = "reviewed " + done + " (" + changed + " changed)";
  }

  document.addEventListener("keydown", function (e) {
    const tag = (e.target.tagName || "").toLowerCase();
    if (e.ctrlKey || e.metaKey || e.altKey || tag === "input" || tag === "select" || tag === "textarea" ||
        tag === "button" && (e.key === " " || e.key === "Enter")) return;
    if (e.key === " ") {
      e.preventDefault();
      if (video.paused) video.play().catch(function () {}); else video.pause();
    } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!shown.length) return;
      let i = shown.findIndex(function (r) { return r.k === (selected === null ? current : selected); });
      i = i < 0 ? 0 : Math.max(0, Math.min(shown.length - 1, i + (e.key === "ArrowDown" ? 1 : -1)));
      select(shown[i].k, true);
    } else if (selected !== null && /^[1-7]$/.test(e.key) && Number(e.key) <= LABELS.length) {
      setCorrection(selected, LABELS[Number(e.key) - 1]);
    } else if (selected !== null && e.key === "0") {
      setCorrection(selected, NOT_SPEECH);
    } else if (selected !== null && e.key === "Enter" && rows[selected].emotion) {
      setCorrection(selected, rows[selected].emotion);
    } else if (selected !== null && (e.key === "Backspace" || e.key === "Delete")) {
      e.preventDefault();
      setCorrection(selected, undefined);
    }
  });

  // ---- export: every row, the reviewer's label in `corrected` (empty where the row was not reviewed)
  function field(v) {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\r\n]|^\s|\s$/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function correctionsCsv() {
    const lines = [["index", "turn", "start", "end", "speaker", "text", "predicted", "corrected"].join(",")];
    rows.forEach(function (r) {
      lines.push([r.index, r.turn, r.start, r.end, r.speaker, r.text, r.emotion || "",
                  corrected(r) ? corrections[r.k] : ""].map(field).join(","));
    });
    return lines.join("\n") + "\n";
  }
  $("export").addEventListener("click", function () {
    const link = el("a");
    link.href = URL.createObjectURL(new Blob([correctionsCsv()], {type: "text/csv;charset=utf-8"}));
    link.download = data.stem + ".corrections.csv";
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  });
  $("reset").addEventListener("click", function () {
    if (!window.confirm("Clear every correction of this page kept in this browser?")) return;
    corrections = {};
    save();
    rows.forEach(setCue);
    drawTimeline(); drawTotals(); applyFilters(); counts();
  });

  drawTimeline();
  drawTotals();
  applyFilters();
  counts();
  window.emocliReview = {correctionsCsv: correctionsCsv, select: select, setCorrection: setCorrection,
                         storageKey: KEY, rows: rows.length};
})();
