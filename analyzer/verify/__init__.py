"""``ghostcap analyze --verify``: tshark as a second opinion on the frames a verdict rests on.

- ``claims``: what ghostcap says about the frames a charger's root cause and its evidence name (no I/O);
- ``compare``: those claims against a dissection of the same frames (no I/O);
- ``tshark``: the one tshark run (through pyshark) that dissects them;
- ``run``: all three for one analysis, as the per-charger ``verification`` object of the JSON report;
- ``words``: that object in one sentence, for the HTML and Markdown reports.
"""
