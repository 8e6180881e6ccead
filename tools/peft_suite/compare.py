"""Compare PEFT's own test results through saharank's bridge with PEFT's LoRA (the control), per test family.

    python tools/peft_suite/compare.py BRIDGE.xml CONTROL.xml COUNTS.json [--out table.md]

BRIDGE.xml / CONTROL.xml: pytest's --junitxml of the two runs of `.ci/peft-suite`; COUNTS.json: the SaharankLoraLayers
each bridge test built (written by tools/peft_suite/conftest.py). A family is a test function (its class named when
it is not TestPeftCustomModel). Exit status 1 (with the reasons) when a test that passes with PEFT's LoRA fails or
errors through the bridge, when a test of one run is missing from the other, when a bridge test passes without
building any SaharankLoraLayer (a vacuous pass), or when nothing was selected."""
import argparse
import collections
import json
import sys
import xml.etree.ElementTree as ET


def results(path: str) -> dict[str, str]:
    "{test id: 'passed' | 'failed' | 'skipped'} from a junit xml (errors count as failures)."
    out = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        tid = f"{tc.get('classname')}::{tc.get('name')}"
        if tc.find("failure") is not None or tc.find("error") is not None: out[tid] = "failed"
        elif tc.find("skipped") is not None: out[tid] = "skipped"
        else: out[tid] = "passed"
    return out


def family(tid: str) -> str:
    cls, name = tid.rsplit("::", 1)
    cls = cls.rsplit(".", 1)[-1]
    fn = name.split("[", 1)[0]
    return fn if cls == "TestPeftCustomModel" else f"{cls}.{fn}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bridge")
    ap.add_argument("control")
    ap.add_argument("counts")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    bridge, control = results(a.bridge), results(a.control)
    built = {k.rsplit("::", 1)[-1]: v for k, v in json.load(open(a.counts)).items()}
    problems = []
    if not control: problems.append("no test selected")
    for tid in sorted(set(control) ^ set(bridge)):
        problems.append(f"{tid}: only in the {'control' if tid in control else 'bridge'} run")
    for tid, st in sorted(bridge.items()):
        if control.get(tid) == "passed" and st == "failed":
            problems.append(f"{tid}: fails through the bridge, passes with PEFT's LoRA")
        if st == "passed" and built.get(tid.rsplit("::", 1)[-1], 0) == 0:
            problems.append(f"{tid}: passed through the bridge without building a SaharankLoraLayer")
    fams = collections.defaultdict(lambda: {"bridge": collections.Counter(), "peft": collections.Counter()})
    for tid, st in bridge.items(): fams[family(tid)]["bridge"][st] += 1
    for tid, st in control.items(): fams[family(tid)]["peft"][st] += 1
    fmt = lambda c: f"{c['passed']}/{c['failed']}/{c['skipped']}"
    lines = ["| test family | bridge pass/fail/skip | PEFT LoRA pass/fail/skip |", "|---|---|---|"]
    for f in sorted(fams): lines.append(f"| {f} | {fmt(fams[f]['bridge'])} | {fmt(fams[f]['peft'])} |")
    tb, tc = (sum((v["bridge"] for v in fams.values()), collections.Counter()),
              sum((v["peft"] for v in fams.values()), collections.Counter()))
    lines.append(f"| **all {len(fams)} families** | **{fmt(tb)}** | **{fmt(tc)}** |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "w") as f: f.write(table + "\n")
    if problems:
        print(f"\n{len(problems)} problem(s):", *problems, sep="\n", file=sys.stderr)
        return 1
    print(f"\nthe bridge fails no test that PEFT's LoRA passes ({tb['passed']} of {sum(tb.values())} pass through the "
          "bridge)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
