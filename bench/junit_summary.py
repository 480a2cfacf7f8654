"""Summarises a pytest JUnit XML report (xunit1): prints "passed N failed N errors N
skipped N" and writes the failed and erroring test ids, sorted, one per line, to a file.

    python3 bench/junit_summary.py REPORT.xml FAILED.txt
"""
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
failed = []
counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
for case in root.iter("testcase"):
    # The node id: file, then any classes of the dotted class name beyond the module.
    # (A collection error has no class and no file: its name is the module's path.)
    parts = (case.get("classname") or "").split(".")
    path = case.get("file") or ""
    module = path.replace("/", ".").removesuffix(".py")
    classes = parts[len(module.split(".")):] if module else []
    name = "::".join([p for p in [path] + classes + [case.get("name") or ""] if p])
    kinds = [c.tag for c in case]
    if "failure" in kinds:
        counts["failed"] += 1; failed.append(name)
    elif "error" in kinds:
        counts["errors"] += 1; failed.append(name)
    elif "skipped" in kinds:
        counts["skipped"] += 1
    else:
        counts["passed"] += 1
open(sys.argv[2], "w").write("\n".join(sorted(set(failed))) + ("\n" if failed else ""))
print(" ".join(f"{k} {v}" for k, v in counts.items()))
