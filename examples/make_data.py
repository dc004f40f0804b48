"""Writes examples/*.csv, the data sets docs/build-and-register.md's worked examples train on, the same bytes each time.

    python examples/make_data.py

Each is small, seeded and made to have a signal a model can find, with what real data has: text categories,
missing values, an id column, a label that is not called `label` and not in the first column.
"""
from __future__ import annotations

import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def species(rows: int = 600, seed: int = 5) -> str:
    """Three species (multiclass) told apart by two measurements and a text column, habitat."""
    rng = random.Random(seed)
    lines = ["petal_length,habitat,petal_width,species"]
    for _ in range(rows):
        kind = rng.choice(["setosa", "versicolor", "virginica"])
        centre = {"setosa": 1.5, "versicolor": 4.3, "virginica": 5.6}[kind]
        home = {"setosa": "meadow", "versicolor": "forest", "virginica": "marsh"}[kind]
        habitat = home if rng.random() < 0.7 else rng.choice(["meadow", "forest", "marsh", "dune"])
        lines.append(f"{centre + rng.gauss(0, 0.45):.2f},{habitat},{centre / 3 + rng.gauss(0, 0.2):.3f},{kind}")
    return "\n".join(lines) + "\n"


def listings(rows: int = 800, seed: int = 7) -> str:
    """House prices (regression) from area, rooms and district; some areas and districts missing; an id."""
    rng = random.Random(seed)
    lines = ["listing_id,area,district,rooms,price"]
    for index in range(rows):
        area, rooms = rng.uniform(30, 220), rng.randint(1, 7)
        district = rng.choice(["north", "south", "centre"])
        price = 2500 * area + 15000 * rooms + {"north": 0, "south": -40000, "centre": 90000}[district]
        price += rng.gauss(0, 12000)
        shown_area = "" if rng.random() < 0.08 else f"{area:.1f}"
        shown_district = "NA" if rng.random() < 0.05 else district
        lines.append(f"L{index:05d},{shown_area},{shown_district},{rooms},{price:.2f}")
    return "\n".join(lines) + "\n"


def customers(rows: int = 700, seed: int = 9) -> str:
    """Churn (binary) from tenure, plan and monthly charges; the label is the last column and reads no or yes."""
    rng = random.Random(seed)
    lines = ["tenure_months,plan,monthly_charges,churned"]
    for _ in range(rows):
        tenure, charges = rng.randint(1, 72), rng.uniform(20, 120)
        plan = rng.choice(["basic", "plus", "pro"])
        risk = charges / 120 - tenure / 72 + (0.3 if plan == "basic" else 0) + rng.gauss(0, 0.2)
        lines.append(f"{tenure},{plan},{charges:.2f},{'yes' if risk > 0.1 else 'no'}")
    return "\n".join(lines) + "\n"


DATA_SETS = {"species.csv": species, "listings.csv": listings, "customers.csv": customers}

if __name__ == "__main__":
    for name, make in DATA_SETS.items():
        (HERE / name).write_text(make())
        print(f"wrote examples/{name}")
