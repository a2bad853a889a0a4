"""CLI: python -m benchmarks.nswapbench {report,check} RESULTS.jsonl ...

  report RESULTS.jsonl [--out DIR] [--force] [--alpha P]
      write results/<UTC date>/ (or DIR): results.jsonl, runs.csv, cells.csv,
      projections.csv, report.md and the PNG charts
  check RESULTS.jsonl
      validate the file against schema.py and print what it holds

Exit status: 0 done, 1 the report could not be written, 2 usage or a bad results file.
"""

import argparse
import datetime
import os
import sys

from . import report, schema, stats

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_out():
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    return os.path.join(REPO, "results", today)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.nswapbench", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("report", help="write the report directory")
    make.add_argument("results", help="JSON-lines file from the benchmark runner")
    make.add_argument("--out", help="output directory (default: results/<UTC date> in the repo)")
    make.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    make.add_argument("--alpha", type=float, default=stats.ALPHA, help="t-test level (0.05)")
    check = commands.add_parser("check", help="validate a results file")
    check.add_argument("results")
    args = parser.parse_args(argv)
    if args.command == "report" and not 0 < args.alpha < 1:
        parser.error("--alpha %g: use a level between 0 and 1, e.g. 0.05" % args.alpha)
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.command == "check":
            results = schema.load(args.results)
        else:
            out = args.out or default_out()
            results = report.write(args.results, out, force=args.force, alpha=args.alpha)
    except schema.SchemaError as err:
        print("nswapbench: %s" % err, file=sys.stderr)
        return 2
    except OSError as err:
        print("nswapbench: %s" % err, file=sys.stderr)
        return 2 if args.command == "check" else 1
    except report.ReportError as err:
        print("nswapbench: %s" % err, file=sys.stderr)
        return 1
    corrupt = [run for run in results.runs if run.corrupt]
    print(
        "%s: %d runs, %d link and %d disk rate records"
        % (args.results, len(results.runs), len(results.link_rates), len(results.disk_rates))
    )
    if corrupt:
        print(
            "nswapbench: DATA CORRUPTION: %d runs have mismatches > 0" % len(corrupt),
            file=sys.stderr,
        )
    if args.command == "report":
        print("report: %s" % os.path.join(os.path.abspath(out), report.REPORT_NAME))
    return 0


if __name__ == "__main__":
    sys.exit(main())
