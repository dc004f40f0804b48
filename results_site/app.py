"""The results site: one page, for people without AWS access, of a copy's models and what the monitor sees.

Run by Streamlit (`streamlit run app.py`) in the site's container on ECS, or by `make site` over the last offline
run. What it shows comes from results.py, read-only.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

import results

st.set_page_config(page_title="Model results", layout="wide")
TABLE = ("outcome", "rows_checked", "drift_share", "drifted", "data_quality_issues", "live_gate_metric",
         "bias_gap_widening", "attribution_ndcg")


@st.cache_data(ttl=300)  # the monitor writes a row an hour: five minutes old is fresh enough
def gathered() -> dict:
    return results.gather(*results.from_environment())


data = gathered()
st.title("Model results")
serving = data["serving_version"]
if serving:
    st.subheader(f"Serving: version {serving['version']} ({serving['approval']})")
    st.caption(f"as of {data['serving_known_from']}")
    shown = {name: value for name, value in serving["metrics"].items()}
    columns = st.columns(max(1, len(shown)))
    for column, (name, value) in zip(columns, shown.items()):
        column.metric(f"{name} (test set)", f"{value:.4f}")
    bound = "at least" if serving["gate_better"] == "higher" else "at most"
    st.caption(f"{serving['arn']}; gate: {serving['gate_metric']} {serving['gate_value']:.4f}, {bound} "
               f"{serving['gate_threshold']}")
else:
    st.subheader("Serving: nothing deployed yet")

rows = data["monitor"]
st.header("Monitoring, per hour")
if rows:
    figures = {"Drift share": "drift_share", "Live gate metric": "live_gate_metric",
               "Bias gap widening": "bias_gap_widening", "Attribution nDCG": "attribution_ndcg"}
    for column, (label, name) in zip(st.columns(len(figures)), figures.items()):
        value, when = results.latest(rows, name)
        column.metric(label, "n/a" if value is None else f"{value:.4f}", help=f"the newest hour with a value: {when}")
    st.caption(f"{len(rows)} windows checked, the newest ending {rows[-1]['window_end']} ({rows[-1]['outcome']})")
    # Rows written before a column existed (attribution_ndcg) read as empty there.
    frame = pd.DataFrame(rows).reindex(columns=list(dict.fromkeys([*rows[-1], *TABLE, "window_end"])))
    frame = frame.set_index("window_end")
    for column, title in (("drift_share", "Share of features drifted"), ("live_gate_metric", "Gate metric on ground truth"),
                          ("bias_gap_widening", "Gap between groups, widening"),
                          ("attribution_ndcg", "Feature attributions, nDCG against the baseline")):
        series = frame[column].dropna()
        if not series.empty:
            st.caption(title)
            st.line_chart(series)
    st.dataframe(frame[list(TABLE)].iloc[::-1])
else:
    st.write("No window has been checked yet.")

st.header("Alarms")
# Tables (not data grids) for the short lists: plain HTML, readable by anything that reads the page.
st.table(pd.DataFrame(data["alarms"] or [{"alarm": "none", "state": "", "since": "", "what": ""}]).set_index("alarm"))

st.header("Registered versions")
st.table(pd.DataFrame([{"version": v["version"], "approval": v["approval"], "created": v["created"],
                        "task": v["task"], "gate": v["gate_metric"], "value": v["gate_value"], **v["metrics"]}
                       for v in data["versions"]]).set_index("version"))
