import re

from kprpe.demo import main


def test_core_demo_reports_agreement_for_every_backend(capsys):
    assert main(["--device", "cpu", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    for backend in ("reference", "sdpa", "flex"):
        line = next(l for l in out.splitlines() if l.startswith(backend))
        error = float(line.split()[1])
        assert error < 1e-4, line
    assert re.search(r"auto picks 'sdpa' on cpu", out)
