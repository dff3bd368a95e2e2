"""Executes the lab's notebooks headlessly on the Rust (evcxr) kernel, fails on
any cell that errors or panics, and exports each executed notebook as HTML.

    run_notebooks.py [--reports DIR] [--check-only] NOTEBOOK...

A panic inside a cell is only printed to stderr by evcxr (the cell still
"succeeds"), so a failed `assert!` would pass unnoticed; this runner also fails
on any stream output containing "panicked at", and on any stderr output (a cell
whose `?` returns an error only prints it there). Notebooks are committed without
outputs; the executed copies and the HTML lab report go to --reports.

A student runs a notebook once, then re-runs cells in the same live kernel. So
after the top-to-bottom run, the cells tagged `rerun` (cell metadata "tags") are
executed again, in order, RERUNS times, in the same kernel, and then the cells
tagged `rerun-last` once more (KafkaDemo: the produce cell and the comparison,
out of order); any error, panic or dead kernel fails the notebook. The report
shows the last run of each cell.
"""

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from nbconvert import HTMLExporter

KERNEL = "rust"
CELL_TIMEOUT_S = 1800  # the first cell builds the helper crate: minutes when cold
RERUNS = 2
RERUN_TAG = "rerun"
RERUN_LAST_TAG = "rerun-last"


def problems_in(notebook):
    """Panics, errors and error outputs the kernel reported without failing the cell.

    evcxr reports a cell that ends in an error through `?` by printing the error
    to stderr, and the cell still "succeeds"; a failed `assert!` prints a panic
    there too. The lab's cells print nothing to stderr otherwise, so any stderr
    output is a failure.
    """
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            stream = output.get("output_type") == "stream"
            text = output.get("text", "") if stream else ""
            if "panicked at" in text:
                found.append(f"cell {index}: panic: {text.strip()[:500]}")
            elif stream and output.get("name") == "stderr" and text.strip():
                found.append(f"cell {index}: error (stderr): {text.strip()[:500]}")
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue', '')[:500]}")
    return found


def committed_without_outputs(notebook):
    return all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def run(path, reports):
    notebook = nbformat.read(path, as_version=4)
    if not committed_without_outputs(notebook):
        return [f"{path} has outputs: notebooks are committed without outputs (clear them)"]
    started = time.monotonic()
    print(f"--> {path}: executing on kernel '{KERNEL}'", flush=True)
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(path.parent)}},
    )
    failure = None
    timings = []  # (seconds, cell index) of the top-to-bottom run
    rerun = [i for i, cell in enumerate(notebook.cells) if RERUN_TAG in cell.metadata.get("tags", [])]
    try:
        with client.setup_kernel():
            for index, cell in enumerate(notebook.cells):
                cell_started = time.monotonic()
                client.execute_cell(cell, index)
                if cell.cell_type == "code":
                    timings.append((time.monotonic() - cell_started, index))
            for round_ in range(RERUNS if rerun else 0):
                if problems_in(notebook):
                    break
                print(f"    re-running {len(rerun)} tagged cell(s), round {round_ + 1}", flush=True)
                for index in rerun:
                    client.execute_cell(notebook.cells[index], index)
            last = [i for i, cell in enumerate(notebook.cells) if RERUN_LAST_TAG in cell.metadata.get("tags", [])]
            if last and not problems_in(notebook):
                print(f"    re-running {len(last)} cell(s) tagged {RERUN_LAST_TAG}", flush=True)
                for index in last:
                    client.execute_cell(notebook.cells[index], index)
    except (CellExecutionError, DeadKernelError, RuntimeError) as error:
        failure = str(error)[-3000:]
    elapsed = time.monotonic() - started
    found = problems_in(notebook)
    if failure:
        found.insert(0, failure)

    reports.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, reports / f"{path.stem}.ipynb")
    html, _ = HTMLExporter().from_notebook_node(notebook)
    (reports / f"{path.stem}.html").write_text(html, encoding="utf-8")
    if timings:
        seconds, index = max(timings)
        first_line = "".join(notebook.cells[index].source).splitlines()[0][:60]
        print(f"    longest cell: {index} ({seconds:.1f} s): {first_line}", flush=True)
    status = "FAILED" if found else "ok"
    print(f"<-- {path}: {status} in {elapsed:.1f} s; report {reports / (path.stem + '.html')}", flush=True)
    return found


def show(executed, title):
    """Prints the plain-text form of the outputs that start with `title`."""
    for cell in nbformat.read(executed, as_version=4).cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain", "")
            if text.startswith(title):
                print(f"\n{text}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    parser.add_argument("--check-only", action="store_true", help="only check that notebooks have no outputs")
    parser.add_argument("--show", metavar="TITLE", help="print the text of each output that starts with TITLE")
    args = parser.parse_args()

    failures = {}
    passed = 0
    for path in args.notebooks:
        if args.check_only:
            problems = [] if committed_without_outputs(nbformat.read(path, as_version=4)) else [f"{path} has outputs"]
        else:
            problems = run(path, args.reports)
        if problems:
            failures[path] = problems
        else:
            passed += 1
        if args.show and not args.check_only:
            show(args.reports / f"{path.stem}.ipynb", args.show)
    for path, problems in failures.items():
        print(f"\n{path}:")
        for problem in problems:
            print(f"  {problem}")
    print(f"\nnotebooks: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
