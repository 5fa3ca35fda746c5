"""NAS-Bench-NLP benchmarks: a results CSV, or the original training logs (a .zip or a folder)."""
from __future__ import annotations

import json
import lzma
import math
import zipfile
import zlib
from pathlib import Path



from trainfree.benchmarks.base import (Benchmark, BenchmarkFormat, Record, check_unique, csv_table, finite_or_none, head_text, number, read_text, register_format)
from trainfree.errors import InvalidArchitecture, InvalidBenchmark
from trainfree.spaces.nasbench_nlp.recipe import parse_recipe

CSV_COLUMNS = ("log_name", "recipe_id", "test_loss", "test_perplexity", "recipe")
LOG_PREFIX = "log_stats_model_"


def load_csv(path: Path, name: str | None = None) -> Benchmark:
    """Rows ``log_name, recipe_id, test_loss, test_perplexity, recipe``; target = test_loss (lower is better)."""
    col, rows = csv_table(read_text(path), path, ("log_name", "test_loss", "recipe"), CSV_COLUMNS)
    records, skipped, names = [], 0, []
    for _, where, row in rows:
        loss = number(row[col["test_loss"]], where, "test_loss")
        names.append(row[col["log_name"]])
        if not math.isfinite(loss):
            skipped += 1
            continue
        try:
            recipe = parse_recipe(row[col["recipe"]], f"{where}: column 'recipe'")
        except InvalidArchitecture as err:
            raise InvalidBenchmark(str(err)) from None
        extra = {"recipe_id": row[col["recipe_id"]]} if "recipe_id" in col else {}
        records.append(Record(row[col["log_name"]], recipe, loss, extra))
    check_unique(names, path)
    if not records:
        raise InvalidBenchmark(f"{path}: no rows with a finite test_loss")
    return Benchmark(name or path.name, "nasbench-nlp", records, target="test_loss", lower_is_better=True,
                     skipped=skipped, source=str(path), corpus="ptb")


def _corpus_of(log: dict) -> str | None:
    """'data/wikitext-2' -> 'wikitext-2' when the log names a corpus trainfree ships."""
    from trainfree.data.corpora import CORPORA

    data = str(log.get("data") or (log.get("args") or {}).get("data") or "").rstrip("/").rsplit("/", 1)[-1].lower()
    return data if data in CORPORA else None


def _log_record(name: str, raw: bytes, where: str) -> Record | None:
    try:
        log = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidBenchmark(f"{where}: not valid JSON ({err})") from None
    except RecursionError:
        raise InvalidBenchmark(f"{where}: not valid JSON (nested too deeply)") from None
    if not isinstance(log, dict):
        raise InvalidBenchmark(f"{where}: expected a JSON object")
    recipe_text = log.get("recepie", log.get("recipe"))
    if recipe_text is None and isinstance(log.get("args"), dict):
        recipe_text = log["args"].get("recepie")
    if recipe_text is None:
        raise InvalidBenchmark(f"{where}: no 'recepie' field")
    losses = log.get("test_losses")
    if not isinstance(losses, list):
        raise InvalidBenchmark(f"{where}: field 'test_losses' must be a list")
    values = (finite_or_none(v, where, f"test_losses[{i}]") if v is not None else math.nan
              for i, v in enumerate(losses))
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    try:
        recipe = parse_recipe(recipe_text, f"{where}: field 'recepie'")
    except InvalidArchitecture as err:
        raise InvalidBenchmark(str(err)) from None
    extra = {"recipe_id": log.get("recepie_id"), "num_params": log.get("num_params"), "corpus": _corpus_of(log)}
    return Record(name, recipe, finite[-1], extra)


def _zip_entries(path: Path) -> list[tuple[str, bytes, str]]:
    """(log name, bytes, where) of every log in a zip. Encrypted members, compression methods zipfile
    cannot read and corrupt data are errors naming the member."""
    entries, member = [], None
    try:
        with zipfile.ZipFile(path) as zf:
            for member in sorted(zf.infolist(), key=lambda i: i.filename):
                base = member.filename.rsplit("/", 1)[-1]
                if not (base.startswith(LOG_PREFIX) and base.endswith(".json")):
                    continue
                if member.flag_bits & 0x1:
                    raise InvalidBenchmark(f"{path}:{member.filename}: the member is encrypted; trainfree reads "
                                           f"unencrypted zips only")
                entries.append((base, zf.read(member), f"{path}:{member.filename}"))
    except InvalidBenchmark:
        raise
    except NotImplementedError as err:  # e.g. a compression method zipfile has no decoder for
        raise InvalidBenchmark(f"{path}:{member.filename}: cannot decompress ({err}; use deflate or store)") from None
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError, zlib.error, lzma.LZMAError) as err:
        where = f"{path}:{member.filename}" if member is not None else str(path)
        raise InvalidBenchmark(f"{where}: not a readable zip file ({err})") from None
    return entries


def load_logs(path: Path, name: str | None = None) -> Benchmark:
    """NAS-Bench-NLP training logs ``log_stats_model_*.json``; target = the last finite test loss.

    Logs without a finite test loss are counted in ``skipped``.
    """
    entries: list[tuple[str, bytes, str]] = []
    if path.is_dir():
        for file in sorted(path.glob(f"{LOG_PREFIX}*.json")):
            try:
                entries.append((file.name, file.read_bytes(), str(file)))
            except OSError as err:
                raise InvalidBenchmark(f"{file}: cannot read ({err})") from None
    else:
        entries = _zip_entries(path)
    check_unique([base for base, _, _ in entries], path)
    if not entries:
        raise InvalidBenchmark(f"{path}: no {LOG_PREFIX}*.json logs found")
    records, skipped = [], 0
    for base, raw, where in entries:
        record = _log_record(base, raw, where)
        if record is None:
            skipped += 1
        else:
            records.append(record)
    if not records:
        raise InvalidBenchmark(f"{path}: no log has a finite test loss ({skipped} skipped)")
    corpora = {r.extra["corpus"] for r in records}
    corpus = corpora.pop() if len(corpora) == 1 else None
    return Benchmark(name or path.name, "nasbench-nlp", records, target="test_loss", lower_is_better=True,
                     skipped=skipped, source=str(path), corpus=corpus)


# -- format registration ---------------------------------------------------------------------------
def _sniff_csv(path: Path) -> bool:
    """The header names NAS-Bench-NLP columns."""
    header = head_text(path).split("\n", 1)[0].split(",")
    return any(c.strip().strip('"') in CSV_COLUMNS for c in header)


def _sniff_logs(path: Path) -> bool:
    """A folder or zip holding at least one log_stats_model_*.json."""
    def is_log(name: str) -> bool:
        base = name.rsplit("/", 1)[-1]
        return base.startswith(LOG_PREFIX) and base.endswith(".json")

    if path.is_dir():
        return any(path.glob(f"{LOG_PREFIX}*.json"))
    try:
        with zipfile.ZipFile(path) as zf:
            return any(is_log(n) for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _one_target(path: Path, target: str | None) -> None:
    if target not in (None, "test_loss"):
        raise InvalidBenchmark(f"{path}: NAS-Bench-NLP benchmarks have one target, test_loss (got {target!r})")


def _load_csv_format(path: Path, name: str | None = None, target: str | None = None, setting=None) -> Benchmark:
    _one_target(path, target)
    return load_csv(path, name=name)


def _load_logs_format(path: Path, name: str | None = None, target: str | None = None, setting=None) -> Benchmark:
    _one_target(path, target)
    return load_logs(path, name=name)


register_format(BenchmarkFormat(
    "nasbench-nlp-csv", "a NAS-Bench-NLP results table (.csv or .csv.gz, columns log_name, test_loss, recipe)",
    (".csv", ".csv.gz"), _sniff_csv, _load_csv_format))
register_format(BenchmarkFormat(
    "nasbench-nlp-logs", f"NAS-Bench-NLP training logs (a .zip or a folder of {LOG_PREFIX}*.json)",
    (".zip",), _sniff_logs, _load_logs_format, folders=True))
