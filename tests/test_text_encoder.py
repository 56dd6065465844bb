"""The text encoder's options: pooling over the utterance's own tokens, typographic punctuation, float32 loads."""

from __future__ import annotations

import torch

from emocli.model.encoders import TextEncoder, load_pretrained


def test_utterance_pooling_averages_only_the_utterance_tokens(encoders):
    enc = TextEncoder(encoders["text"], pooling="utterance")
    tokens = enc.tokenize(["you did what", "oh no"], ["A: we won | B: hey", ""])
    with torch.no_grad():
        pooled = enc(**tokens)
        hidden = enc.model(**tokens).last_hidden_state
    mask = (tokens["attention_mask"] * (tokens["token_type_ids"] == 0)).unsqueeze(-1).float()
    assert torch.allclose(pooled, (hidden * mask).sum(1) / mask.sum(1), atol=1e-6)
    # with context, the context tokens are left out of the average; "mean" keeps them
    mean = TextEncoder(encoders["text"], pooling="mean")
    with torch.no_grad():
        assert not torch.allclose(mean(**tokens)[0], pooled[0], atol=1e-4)
        # without context there is nothing to leave out
        alone = enc.tokenize(["oh no"])
        assert torch.allclose(mean(**alone), enc(**alone), atol=1e-6)


def test_ascii_quotes_option_tokenises_typographic_punctuation_like_ascii(encoders):
    plain = TextEncoder(encoders["text"])
    ascii_ = TextEncoder(encoders["text"], ascii_quotes=True)
    curly = ["I\u2019m \u201cfine\u201d \u2014 really\u2026"]
    straight = ["I'm \"fine\" - really..."]
    assert torch.equal(ascii_.tokenize(curly)["input_ids"], plain.tokenize(straight)["input_ids"])
    assert not torch.equal(plain.tokenize(curly)["input_ids"], plain.tokenize(straight)["input_ids"])


def test_half_precision_weights_load_as_float32(encoders, tmp_path):
    model = load_pretrained(encoders["text"])
    model.half().save_pretrained(tmp_path / "fp16")
    assert all(p.dtype == torch.float32 for p in load_pretrained(str(tmp_path / "fp16")).parameters())
