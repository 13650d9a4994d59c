#!/usr/bin/env python3
"""Summarise criterion results (target/criterion/**/new) as one line per
benchmark: group, function, mean time and throughput (G elements/s; for
matmul an element is a flop). Usage: python3 benches/summary.py [dir]"""
import json, os, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'target/criterion'
rows = []
for dp, dn, fn in os.walk(root):
    if dp.endswith('/new') and 'estimates.json' in fn and 'benchmark.json' in fn:
        b = json.load(open(os.path.join(dp, 'benchmark.json')))
        e = json.load(open(os.path.join(dp, 'estimates.json')))
        t = e['mean']['point_estimate']  # ns
        thr = b.get('throughput') or {}
        n = thr.get('Elements') or thr.get('Bytes')
        rows.append((b['group_id'], b['function_id'] + ('/' + b['value_str'] if b.get('value_str') else ''), t, n / t if n else None))
rows.sort()
for g, f, t, r in rows:
    print(f"{g:32s} {f:26s} {t/1000:12.2f} us  {r:8.3f} G/s" if r else f"{g} {f} {t}")
