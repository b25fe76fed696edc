"""From a learner's file to the notebook the grader runs — trusting only ``solutions/``.

nbgrader's rule: every cell comes from the instructor's solution notebook except the
learner's answers. A submitted notebook is matched cell by cell against the exercise
generated from the solution; only what the learner wrote in place of a
``# YOUR CODE HERE`` placeholder is taken from their file, spliced into the solution's
own cell (so the ``check("NN.id", answer)`` line, the question id and everything around
the answer are the instructor's). Extra code cells the learner added are kept in place
(they may compute an answer) and reported; missing, duplicated and edited cells are
reported too. Question ids and the expression whose value is graded come from the
solution's ``check(...)`` calls, never from the learner's text.
"""

from __future__ import annotations

import ast
import difflib
import enum
import json
import re
import shutil
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from labsupport.authoring.cells import BEGIN, CODE_PLACEHOLDER, END, is_graded

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_MAX_UNPACKED = 200 * 1024 * 1024  # bytes per archive: a class's notebooks are far smaller
_COPY_SUFFIX = re.compile(
    r"(?i)(?:-copy\d*|\s*\(\d+\)|[ _-]copy(?:\s*\d+)?|-checkpoint|_v\d+|-v\d+)+$"
)
_COPY_PREFIX = re.compile(r"(?i)^copy of\s+")


class NotebookKind(str, enum.Enum):
    """What a submitted ``.ipynb`` turned out to be."""

    EXERCISE = "exercise"
    LESSON = "lesson"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Submission:
    """One learner's file for one exercise (``exercise`` is the solution's file name)."""

    learner: str
    path: Path
    exercise: str


@dataclass
class Discovery:
    """What was found under the paths given to ``grade``, and what was skipped and why."""

    submissions: list[Submission] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- finding files --------------------------------------------------------------------------


def canonical_name(filename: str) -> str:
    """``01_x-Copy1.ipynb``, ``01_x (1).ipynb``, ``Copy of 01_x.ipynb`` → ``01_x.ipynb``."""
    stem = Path(filename).name
    stem = stem[: -len(".ipynb")] if stem.lower().endswith(".ipynb") else stem
    stem = _COPY_PREFIX.sub("", _COPY_SUFFIX.sub("", stem.strip()))
    return stem + ".ipynb"


def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _archive_stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack a zip or tar ``archive`` into ``dest`` safely (no absolute paths, no ``..``,
    no links, at most 200 MB); raises ValueError saying why it refused."""
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                target = (dest / info.filename).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise ValueError(f"{info.filename!r} would land outside the folder")
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    continue  # a symbolic link: skipped
                total += info.file_size
                if total > _MAX_UNPACKED:
                    raise ValueError("more than 200 MB unpacked")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out)
        return dest
    with tarfile.open(archive) as tf:
        members = []
        for m in tf.getmembers():
            if not (m.isfile() or m.isdir()):
                continue  # links, devices, fifos: skipped
            total += m.size
            if total > _MAX_UNPACKED:
                raise ValueError("more than 200 MB unpacked")
            members.append(m)
        tf.extractall(dest, members=members, filter="data")  # refuses absolute and ../ paths
    return dest


def _skip(path: Path) -> bool:
    return any(p.startswith(".") or p in {"__MACOSX", ".ipynb_checkpoints"} for p in path.parts)


def discover(paths: Iterable[Path], exercises: Iterable[str], unpack_dir: Path) -> Discovery:
    """Find (learner, notebook, exercise) triples under ``paths``.

    A notebook given by name belongs to the learner named by its folder; an archive
    given by name (``ana.zip``) to the learner it is named after; in a folder, each
    sub-folder or archive is one learner and loose notebooks belong to the folder's
    learner. Archives are unpacked into ``unpack_dir``. Files that are not notebooks of
    this course's exercises are skipped with a warning; ``-Copy1`` / `` (1)`` names are
    matched to their exercise, and when a learner has two files for one exercise the
    one with the exact name (else the newest) is graded.
    """
    names = set(exercises)
    found = Discovery()
    candidates: list[tuple[str, Path]] = []
    counter = 0

    def from_archive(learner: str, archive: Path) -> None:
        nonlocal counter
        counter += 1
        try:
            root = unpack(archive, unpack_dir / f"{counter:04d}-{learner}")
        except (ValueError, OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
            found.warnings.append(f"{learner}: could not unpack {archive.name}: {exc}")
            return
        from_folder(learner, root)

    def from_folder(learner: str, folder: Path) -> None:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if _skip(rel) or not path.is_file():
                continue
            if path.suffix.lower() == ".ipynb":
                candidates.append((learner, path))
            elif _is_archive(path):
                from_archive(learner, path)
            else:
                found.warnings.append(f"{learner}: skipped {rel} (not a notebook)")

    for root in map(Path, paths):
        if not root.exists():
            found.warnings.append(f"{root}: no such file or folder")
        elif root.is_file() and _is_archive(root):
            from_archive(_archive_stem(root), root)
        elif root.is_file():
            learner = root.resolve().parent.name or root.stem
            if root.suffix.lower() == ".ipynb":
                candidates.append((learner, root))
            else:
                found.warnings.append(f"{learner}: skipped {root.name} (not a notebook)")
        else:
            for child in sorted(root.iterdir()):
                if _skip(Path(child.name)):
                    continue
                if child.is_dir():
                    from_folder(child.name, child)
                elif _is_archive(child):
                    from_archive(_archive_stem(child), child)
                elif child.suffix.lower() == ".ipynb":
                    candidates.append((root.resolve().name, child))
                else:
                    found.warnings.append(f"{root.name}: skipped {child.name} (not a notebook)")

    chosen: dict[tuple[str, str], list[Path]] = {}
    for learner, path in candidates:
        name = canonical_name(path.name)
        if name not in names:
            prefix = [n for n in names if n[:3] == name[:3] and re.match(r"\d\d_", name)]
            if len(prefix) == 1:
                found.warnings.append(f"{learner}: {path.name} graded as {prefix[0]}")
                name = prefix[0]
            else:
                found.warnings.append(f"{learner}: skipped {path.name} (not an exercise here)")
                continue
        chosen.setdefault((learner, name), []).append(path)
    for (learner, name), files in chosen.items():
        files.sort(key=lambda p: (p.name != name, -p.stat().st_mtime))
        for other in files[1:]:
            found.warnings.append(
                f"{learner}: {other.name} ignored — {files[0].name} is graded for {name}"
            )
        found.submissions.append(Submission(learner, files[0], name))
    found.submissions.sort(key=lambda s: (s.learner, s.exercise))
    return found


# --- reading a submission --------------------------------------------------------------------


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read a learner's file leniently: any JSON notebook with a list of cells will do
    (4.4 files carrying cell ids, unknown metadata). ValueError when it is not one."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a notebook (not JSON: {exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise ValueError("not a notebook (no list of cells)")
    if raw.get("nbformat") != 4:
        try:
            return nbformat.reads(json.dumps(raw), as_version=4)
        except Exception as exc:  # an old or broken format: the learner's file
            raise ValueError(f"not a version-4 notebook ({exc})") from None
    cells = []
    for c in raw["cells"]:
        if not isinstance(c, dict) or c.get("cell_type") not in {"code", "markdown", "raw"}:
            continue
        src = c.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        tags = c.get("metadata", {}).get("tags", []) if isinstance(c.get("metadata"), dict) else []
        cells.append(
            nbformat.from_dict(
                {"cell_type": c["cell_type"], "source": src, "metadata": {"tags": list(tags)}}
            )
        )
    return nbformat.from_dict({"cells": cells, "metadata": raw.get("metadata", {})})


def _kind_score(cells: list[nbformat.NotebookNode], reference: nbformat.NotebookNode) -> int:
    keys = {(c.cell_type, c.source.strip()) for c in reference.cells}
    return sum((c.cell_type, c.source.strip()) in keys for c in cells)


def classify(
    nb: nbformat.NotebookNode, exercise: nbformat.NotebookNode, lesson: nbformat.NotebookNode | None
) -> NotebookKind:
    """EXERCISE or LESSON, whichever the notebook's cells resemble more (the two share a
    file name); UNKNOWN when it resembles neither."""
    ex = _kind_score(nb.cells, exercise)
    le = _kind_score(nb.cells, lesson) if lesson is not None else 0
    if le > ex:
        return NotebookKind.LESSON
    if ex == 0 and not any(is_graded(c) for c in nb.cells):
        return NotebookKind.UNKNOWN
    return NotebookKind.EXERCISE


# --- the solution as a template --------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """Part of a solution cell: fixed lines (``answer`` -1) or answer block ``answer``."""

    lines: tuple[str, ...]
    answer: int = -1
    indent: str = ""


def segments(source: str) -> list[Segment]:
    """Split a solution cell into fixed parts and ``### BEGIN/END SOLUTION`` blocks."""
    out: list[Segment] = []
    fixed: list[str] = []
    block: list[str] | None = None
    indent = ""
    k = 0
    for line in source.splitlines():
        s = line.strip()
        if s.startswith(BEGIN):
            if fixed:
                out.append(Segment(tuple(fixed)))
                fixed = []
            block, indent = [], line[: len(line) - len(line.lstrip())]
        elif s.startswith(END) and block is not None:
            out.append(Segment(tuple(block), k, indent))
            k += 1
            block = None
        elif block is not None:
            block.append(line)
        else:
            fixed.append(line)
    if fixed:
        out.append(Segment(tuple(fixed)))
    return out


def template_lines(segs: list[Segment]) -> list[tuple[str, int, bool]]:
    """The exercise's lines of a cell as (text, answer block or -1, is placeholder)."""
    lines: list[tuple[str, int, bool]] = []
    for seg in segs:
        if seg.answer < 0:
            lines += [(line, -1, False) for line in seg.lines]
        else:
            lines += [(seg.indent + p, seg.answer, True) for p in CODE_PLACEHOLDER]
    return lines


def extract_answers(solution_source: str, learner_source: str) -> dict[int, list[str]]:
    """The learner's lines for each answer block of a cell (by a line diff against the
    exercise version of the solution cell): lines equal to the exercise's fixed lines are
    dropped (they are restored from the solution), anything else the learner typed goes
    to the answer block it was written in or next to."""
    segs = segments(solution_source)
    tmpl = template_lines(segs)
    blocks = sorted({a for _, a, _ in tmpl if a >= 0})
    answers: dict[int, list[str]] = {k: [] for k in blocks}
    if not blocks:
        return answers
    learner = learner_source.splitlines()
    sm = difflib.SequenceMatcher(
        None, [t.rstrip() for t, _, _ in tmpl], [x.rstrip() for x in learner], autojunk=False
    )

    def nearest(i: int) -> int:
        # the answer block a learner's line typed at template position i belongs to
        best, dist = blocks[0], None
        for idx, (_, a, _) in enumerate(tmpl):
            if a >= 0:
                d = abs(idx - i) if idx < i else abs(idx - i) + 0.5
                if dist is None or d < dist:
                    best, dist = a, d
        return best

    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                if tmpl[i][2]:  # a placeholder left in place: still unanswered
                    answers[tmpl[i][1]].append(learner[j])
        elif op in {"replace", "insert"}:
            owners = [tmpl[i][1] for i in range(i1, i2) if tmpl[i][1] >= 0]
            answers[owners[0] if owners else nearest(i1)].extend(learner[j1:j2])
    return answers


def splice(solution_source: str, answers: dict[int, list[str]]) -> str:
    """The solution cell with each answer block replaced by the learner's lines."""
    out: list[str] = []
    for seg in segments(solution_source):
        if seg.answer < 0:
            out.extend(seg.lines)
        else:
            lines = answers.get(seg.answer, [])
            if not any(x.strip() for x in lines):
                # nothing typed and the placeholder deleted: an empty answer (still valid
                # Python inside an indented block)
                lines = [seg.indent + "pass"] if seg.indent else []
            out.extend(lines)
    return "\n".join(out)


@dataclass(frozen=True)
class GradedQuestion:
    """A question the solution checks: its id and the expression whose value is graded."""

    qid: str
    expression: str


def _python(source: str) -> str:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # no IPython: plain Python is what the course uses anyway
        return source


def graded_questions(source: str) -> list[GradedQuestion]:
    """``check("NN.id", <expr>)`` calls of a solution cell, in order (duplicates once)."""
    code = _python(source)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    found: dict[str, GradedQuestion] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "check"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            expr = ast.get_source_segment(code, node.args[1]) or ast.unparse(node.args[1])
            found.setdefault(node.args[0].value, GradedQuestion(node.args[0].value, expr))
    return sorted(found.values(), key=lambda q: code.find(f'"{q.qid}"'))


# --- matching a submission to the solution ---------------------------------------------------


@dataclass
class Assembly:
    """The notebook to run, which of its cells are graded, and what was noticed."""

    notebook: nbformat.NotebookNode
    graded: dict[int, list[GradedQuestion]]
    notes: list[str] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)


def _key(cell: nbformat.NotebookNode) -> tuple[str, str]:
    return cell.cell_type, cell.source.strip()


def _score(tmpl: nbformat.NotebookNode, cell: nbformat.NotebookNode) -> float:
    if tmpl.cell_type != cell.cell_type:
        return 0.0
    fixed = [ln.strip() for ln in tmpl.source.splitlines() if ln.strip()]
    fixed = [ln for ln in fixed if ln not in {p.strip() for p in CODE_PLACEHOLDER}]
    have = {ln.strip() for ln in cell.source.splitlines()}
    share = sum(ln in have for ln in fixed) / len(fixed) if fixed else 0.5
    return 0.1 + share


def _align(tmpl: list[int], learner: list[int], t_cells: list, l_cells: list) -> dict[int, int]:
    """Order-preserving pairing of a gap's template and learner cells maximising _score."""
    n, m = len(tmpl), len(learner)
    if not n or not m:
        return {}
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            s = _score(t_cells[tmpl[i]], l_cells[learner[j]])
            pair = best[i + 1][j + 1] + s if s > 0 else 0.0
            best[i][j] = max(pair, best[i + 1][j], best[i][j + 1])
    pairs: dict[int, int] = {}
    i = j = 0
    while i < n and j < m:
        s = _score(t_cells[tmpl[i]], l_cells[learner[j]])
        if s > 0 and best[i][j] == best[i + 1][j + 1] + s:
            pairs[tmpl[i]] = learner[j]
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def match_cells(exercise: nbformat.NotebookNode, learner: nbformat.NotebookNode) -> dict[int, int]:
    """Template cell index → learner cell index (unchanged cells first, then the rest of
    each gap paired by the fixed lines they share)."""
    t_cells, l_cells = exercise.cells, learner.cells
    sm = difflib.SequenceMatcher(
        None, [_key(c) for c in t_cells], [_key(c) for c in l_cells], autojunk=False
    )
    pairs: dict[int, int] = {}
    ti = lj = 0
    for block in sm.get_matching_blocks():
        gap_t = list(range(ti, block.a))
        gap_l = list(range(lj, block.b))
        pairs.update(_align(gap_t, gap_l, t_cells, l_cells))
        for k in range(block.size):
            pairs[block.a + k] = block.b + k
        ti, lj = block.a + block.size, block.b + block.size
    return pairs


def assemble(
    solution: nbformat.NotebookNode, exercise: nbformat.NotebookNode, learner: nbformat.NotebookNode
) -> Assembly:
    """The notebook the grader runs: the solution's cells, the learner's answers spliced
    into the answer blocks, the learner's extra code cells in place."""
    from labsupport.authoring.cells import has_solution

    pairs = match_cells(exercise, learner)
    by_learner = {j: i for i, j in pairs.items()}
    cells: list[nbformat.NotebookNode] = []
    graded: dict[int, list[GradedQuestion]] = {}
    notes: list[str] = []
    missing: set[str] = set()

    def label(i: int) -> str:
        qs = graded_questions(solution.cells[i].source) if is_graded(solution.cells[i]) else []
        return "graded cell " + ", ".join(q.qid for q in qs) if qs else f"cell {i + 1}"

    extras_before: dict[int, list[int]] = {}
    last_template = -1
    for j in range(len(learner.cells)):
        if j in by_learner:
            last_template = by_learner[j]
        elif learner.cells[j].cell_type == "code" and learner.cells[j].source.strip():
            extras_before.setdefault(last_template, []).append(j)

    def add_extras(after: int) -> None:
        for j in extras_before.get(after, []):
            src = learner.cells[j].source
            dup = [
                i
                for i in range(len(exercise.cells))
                if is_graded(exercise.cells[i])
                and _score(exercise.cells[i], learner.cells[j]) >= 0.6
                and any(ln.strip() for ln in exercise.cells[i].source.splitlines())
            ]
            if dup:
                notes.append(
                    f"{label(dup[0])} appears more than once; the copy in its place is graded, "
                    f"the extra copy runs but counts for nothing"
                )
            else:
                notes.append(f"extra code cell {j + 1} kept (it runs before the next cell)")
            cells.append(nbformat.v4.new_code_cell(src))

    add_extras(-1)
    for i, sol_cell in enumerate(solution.cells):
        cell = nbformat.from_dict(
            {
                "cell_type": sol_cell.cell_type,
                "source": sol_cell.source,
                "metadata": {"tags": list(sol_cell.get("metadata", {}).get("tags", []))},
            }
        )
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
        j = pairs.get(i)
        questions = graded_questions(sol_cell.source) if is_graded(sol_cell) else []
        if sol_cell.cell_type == "code" and has_solution(sol_cell):
            if j is None:
                if questions:
                    missing |= {q.qid for q in questions}
                    notes.append(f"{label(i)} is missing from the submission")
                else:
                    notes.append(f"exercise cell {i + 1} is missing from the submission")
                answers: dict[int, list[str]] = {}
                for seg in segments(sol_cell.source):
                    if seg.answer >= 0:
                        answers[seg.answer] = [seg.indent + p for p in CODE_PLACEHOLDER]
            else:
                answers = extract_answers(sol_cell.source, learner.cells[j].source)
                fixed_kept = _score(exercise.cells[i], learner.cells[j])
                if fixed_kept < 1.05 and questions:
                    notes.append(f"{label(i)} was edited outside its answer (restored)")
            cell.source = splice(sol_cell.source, answers)
        elif questions and j is None:
            notes.append(f"{label(i)} is missing from the submission (restored)")
        if questions:
            graded[len(cells)] = questions
        cells.append(cell)
        add_extras(i)
    nb = nbformat.v4.new_notebook(metadata=dict(solution.metadata))
    nb.cells = cells
    for c in nb.cells:
        c.pop("id", None)
    nb.nbformat_minor = 4
    return Assembly(nb, graded, notes, missing)
