"""The conformance kit vendors run to show their systems send and receive Safeguarding Exchange messages as the
standard requires: test kits of suites > groups > tests, each test citing the requirement ids it proves, a closed
set of results, and reports for people (terminal, HTML) and for CI systems (JSON, JUnit XML).

    model.py      the shapes: Test, Group, Suite, Result, Outcome, Report
    fhirpath.py   the small FHIRPath subset scenario expectations are written in
    scenarios.py  the scenario inputs the kit ships (who placed which child where and when, ...)
    kits/         one module per kit; kits/__init__.py is the registry of kits
    report.py     the report formats
    cli.py        `sgx conformance ...`
"""
