"""nbgrader with the tandem kernel: lesson 3's exercise made an nbgrader assignment (its
exercise cell an autograded answer, its check cell the autograder tests, worth 5 points),
released by `nbgrader generate_assignment`, answered by three learners (the solution, the
lesson's stub that awaits one fetch after the other, and the release left as it was), and
graded by one `nbgrader autograde` run with TANDEM_STRICT_CHECKS=1: 5 points for the
solution, 0 for the others. Without the variable every check only prints, and a wrong answer
would get all the points: the last test shows it.

nbgrader lives in a venv of its own, .venv-nbgrader (tests/run makes it from
tests/nbgrader-requirements.txt), and finds the tandem kernelspec through JUPYTER_PATH."""
import copy
import csv
import os
import pathlib
import shutil
import subprocess

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NBGRADER = ROOT / ".venv-nbgrader" / "bin" / "nbgrader"
LESSON = ROOT / "notebooks" / "03-asynchronous.ipynb"
SOLUTIONS = ROOT / "notebooks" / "solutions" / "03-asynchronous.ipynb"
ASSIGNMENT = "lesson3"
NOTEBOOK = "03-asynchronous.ipynb"
POINTS = 5
# The exercise's statement, the exercise and its check. The lesson's earlier cells are not
# needed: `async_task` comes with the kernel's helpers.
CELLS = ["03-12", "03-13", "03-14"]
STUB = "// YOUR CODE HERE"
LEARNERS = ("solved", "sequential", "untouched")

CONFIG = f"""\
c = get_config()
c.CourseDirectory.course_id = "tandem"
# What replaces the solution region in the released notebook (nbgrader has none for Rust).
c.ClearSolutions.code_stub = {{"rust": {STUB!r}}}
# A cell's time limit, compiling included (nbgrader's default is 30 s).
c.Execute.timeout = 120
"""


def nbgrader_metadata(grade_id, *, solution=False, grade=False, locked=False, points=None):
    """What nbgrader's "Create Assignment" toolbar writes into a cell (schema 3)."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def cell(notebook, cell_id):
    [found] = [c for c in notebook.cells if c.get("id") == cell_id]
    return found


def source_notebook():
    """Lesson 3's exercise as an nbgrader source notebook: the solution inside
    `// BEGIN SOLUTION` .. `// END SOLUTION`, which nbgrader clears on release."""
    lesson = nbformat.read(LESSON, as_version=4)
    solved = nbformat.read(SOLUTIONS, as_version=4)
    notebook = copy.deepcopy(lesson)
    notebook.cells = [copy.deepcopy(cell(lesson, i)) for i in CELLS]

    exercise = cell(notebook, "03-13")
    assert "exercise" in exercise.metadata.tags
    heading, *answer = cell(solved, "03-13").source.splitlines()
    assert heading.startswith("// Exercise 3") and "tokio::join!(" in answer[0], answer
    exercise.source = "\n".join([heading, "// BEGIN SOLUTION", *answer, "// END SOLUTION"])
    exercise.metadata.nbgrader = nbgrader_metadata("exercise-3", solution=True)

    check = cell(notebook, "03-14")
    assert "check" in check.metadata.tags and ".show()" in check.source
    check.metadata.nbgrader = nbgrader_metadata("check-3", grade=True, locked=True,
                                                points=POINTS)
    return notebook


def nbgrader(course, *args, strict=True, timeout=600):
    """Runs the nbgrader command in `course`, as from its venv activated (nbgrader runs
    the `alembic` command of its venv). Its kernels inherit this environment."""
    def first(path, variable):
        return os.pathsep.join(p for p in (str(path), os.environ.get(variable)) if p)
    env = dict(os.environ, PATH=first(NBGRADER.parent, "PATH"),
               JUPYTER_PATH=first(ROOT / ".venv" / "share" / "jupyter", "JUPYTER_PATH"))
    env.pop("TANDEM_STRICT_CHECKS", None)
    if strict:
        env["TANDEM_STRICT_CHECKS"] = "1"
    done = subprocess.run([str(NBGRADER), *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"nbgrader {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def scores(course):
    """Each learner's score and the maximum, from the gradebook (`nbgrader export`)."""
    nbgrader(course, "export", "--to", "grades.csv")
    with open(course / "grades.csv", newline="") as grades:
        return {row["student_id"]: (float(row["score"]), float(row["max_score"]))
                for row in csv.DictReader(grades)}


def outputs_text(graded_cell):
    """What a learner sees under a graded cell: its streams and its error, as text."""
    parts = []
    for output in graded_cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
    return "".join(parts)


def submit(course, learner, exercise_source):
    """Puts `learner`'s copy of the release into submitted/, with their exercise cell."""
    released = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    if exercise_source is not None:
        cell(released, "03-13").source = exercise_source
    folder = course / "submitted" / learner / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(released, folder / NOTEBOOK)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course with the assignment generated (released) and three submissions in."""
    if not NBGRADER.exists():
        pytest.fail(f"{NBGRADER} is missing: tests/run installs tests/nbgrader-requirements.txt")
    course = tmp_path_factory.mktemp("course")
    (course / "nbgrader_config.py").write_text(CONFIG)
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(source_notebook(), course / "source" / ASSIGNMENT / NOTEBOOK)
    nbgrader(course, "generate_assignment", ASSIGNMENT)

    lesson = nbformat.read(LESSON, as_version=4)
    submit(course, "solved", cell(nbformat.read(SOLUTIONS, as_version=4), "03-13").source)
    submit(course, "sequential", cell(lesson, "03-13").source)  # awaits one after the other
    submit(course, "untouched", None)
    return course


@pytest.fixture(scope="module")
def graded(course):
    """The course after one strict `nbgrader autograde` of every submission."""
    nbgrader(course, "autograde", ASSIGNMENT)
    return course


def autograded(course, learner):
    return nbformat.read(course / "autograded" / learner / ASSIGNMENT / NOTEBOOK, as_version=4)


def test_the_release_has_the_stub_and_the_locked_check(course):
    released = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    assert [c.id for c in released.cells] == CELLS
    assert released.metadata.kernelspec.name == "tandem"
    exercise, check = cell(released, "03-13"), cell(released, "03-14")
    assert exercise.source == "// Exercise 3: make the three fetches wait together.\n" + STUB
    assert "SOLUTION" not in exercise.source and "join!" not in exercise.source
    assert exercise.metadata.tags == ["exercise"]  # the lesson's own tags stay
    lesson = nbformat.read(LESSON, as_version=4)
    assert check.source == cell(lesson, "03-14").source
    assert check.metadata.nbgrader["points"] == POINTS and check.metadata.nbgrader["locked"]


def test_autograde_gives_the_solution_full_points_and_wrong_answers_none(graded):
    assert scores(graded) == {"solved": (POINTS, POINTS), "sequential": (0, POINTS),
                              "untouched": (0, POINTS)}


def test_the_learners_see_the_verdict_under_the_check(graded):
    passed = outputs_text(cell(autograded(graded, "solved"), "03-14"))
    assert "✅ PASS: the fetches overlapped" in passed, passed
    assert "NOT YET" not in passed and "TANDEM_STRICT_CHECKS" not in passed, passed

    sequential = outputs_text(cell(autograded(graded, "sequential"), "03-14"))
    assert "💡 NOT YET:" in sequential and "tokio::join!" in sequential, sequential
    assert "the check did not pass (TANDEM_STRICT_CHECKS=1)" in sequential, sequential

    untouched = outputs_text(cell(autograded(graded, "untouched"), "03-14"))
    assert "💡 NOT YET: none of the exercise's tasks finished" in untouched, untouched

    # The exercise cells themselves ran without an error: only the checks decide.
    for learner in LEARNERS:
        exercise = cell(autograded(graded, learner), "03-13")
        assert not [o for o in exercise.outputs if o.output_type == "error"], learner


def test_without_strict_checks_a_wrong_answer_would_get_full_points(graded, tmp_path):
    # The reason for TANDEM_STRICT_CHECKS=1: nbgrader gives a test cell its points unless it
    # fails, and by default a check that does not pass only prints.
    lenient = tmp_path / "course"
    shutil.copytree(graded, lenient, ignore=shutil.ignore_patterns("autograded", "feedback"))
    nbgrader(lenient, "autograde", ASSIGNMENT, "--student", "sequential", "--force",
             strict=False)
    assert scores(lenient)["sequential"] == (POINTS, POINTS)
    shown = outputs_text(cell(autograded(lenient, "sequential"), "03-14"))
    assert "💡 NOT YET:" in shown and "TANDEM_STRICT_CHECKS" not in shown, shown
