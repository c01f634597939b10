"""Time a whole `sae-search build` where only the indexer's dependencies are installed (a GPU machine without
FastAPI or pydantic): the CLI's own parser and handler, then one JSON line with the manifest's stage timings.

    python3 bench/build.py --corpus arxiv_abstracts.parquet --out /tmp/idx --model MODEL_DIR --device auto
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

log = logging.getLogger("bench.build")


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from indexer.build_cli import add_build_parser  # after logging, so the import's own logs show

    parser = argparse.ArgumentParser(description=__doc__)
    add_build_parser(parser.add_subparsers())
    args = parser.parse_args(["build", *sys.argv[1:]])
    start = time.perf_counter()
    rc = args.handler(args)
    wall = time.perf_counter() - start
    manifest = json.loads((Path(args.out) / "manifest.json").read_text())
    log.info("%s", json.dumps({
        "wall_s": round(wall, 2), "timings_s": manifest.get("timings_s"), "documents": manifest["documents"],
        "val_nmse": manifest["sae"]["metrics"].get("val_nmse"), "features": manifest["features"],
    }))
    return rc


if __name__ == "__main__":
    sys.exit(main())
