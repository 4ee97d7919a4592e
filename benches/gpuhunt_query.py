"""The same query as `capsule openmesh templates --min-cpu 4 --min-memory 8 --limit 5`, run by
gpuhunt (PyPI) over a local catalog CSV, for the side-by-side figure in BENCHMARKS.md.

    python3 benches/gpuhunt_query.py csv OVERLAY_DIR CSV_DIR   # one row per generated template
    GPUHUNT_CATALOG_DIR=CSV_DIR python3 benches/gpuhunt_query.py query

`csv` turns the overlay written by `capsule openmesh catalog generate` into gpuhunt's catalog
format (`aws.csv`, columns of gpuhunt's CATALOG_V2_FIELDS), one row per template in its first
region. `query` is what is timed: gpuhunt reads the CSV named by GPUHUNT_CATALOG_DIR, filters it
and prints the five cheapest matches.
"""

import csv
import json
import os
import re
import sys


def to_csv(overlay, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    text = open(os.path.join(overlay, "synthetic", "templates.toml")).read()
    fields = ["instance_name", "location", "price", "cpu", "memory", "gpu_count", "gpu_name",
              "gpu_memory", "spot", "disk_size", "gpu_vendor", "flags", "cpu_arch",
              "provider_data"]
    rows = 0
    with open(os.path.join(out_dir, "aws.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for entry in text.split("[[templates]]")[1:]:
            kv = dict(re.findall(r'^(\w+) = (.*)$', entry, re.M))
            region = re.findall(r'"([^"]+)"', kv["regions"])[0]
            w.writerow({
                "instance_name": json.loads(kv["plan"]), "location": region,
                "price": kv["price_hourly"], "cpu": kv["cpu"], "memory": kv["memory_gb"],
                "gpu_count": 0, "gpu_name": "", "gpu_memory": "", "spot": False,
                "disk_size": kv["storage_gb"], "gpu_vendor": "", "flags": "",
                "cpu_arch": "x86", "provider_data": "{}",
            })
            rows += 1
    print(f"wrote {rows} rows to {out_dir}/aws.csv")


def query():
    import gpuhunt

    catalog = gpuhunt.Catalog(balance_resources=False, auto_reload=False)
    items = catalog.query(provider="aws", min_cpu=4, min_memory=8)
    items.sort(key=lambda i: i.price)
    for i in items[:5]:
        print(i.instance_name, i.location, i.price, i.cpu, i.memory)


if __name__ == "__main__":
    if sys.argv[1:2] == ["csv"]:
        to_csv(sys.argv[2], sys.argv[3])
    else:
        query()
