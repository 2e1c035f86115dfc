"""Conformance records: what PyTorch computed on one CPU, and qgolden checked against it.

    records.py   the record format (manifests, cases); load_record, record_cpu_class
    record.py    `qgolden conformance record`: the generated suite, run by PyTorch on this machine
    check.py     `qgolden conformance check`: lower for the recorded CPU, run with NumPy, compare bits
"""
