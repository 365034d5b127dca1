"""The stop flag of a training: the first SIGINT/SIGTERM asks for a checkpoint and a stop; the
same request relayed again at once (a cluster signals every process, torchrun relays to its
ranks) is still that one; a signal sent again later stops at once with the signal's status."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ssl_graph.train.signals import Stopped, stop_on_signals


def test_a_relayed_signal_is_one_request_a_later_one_stops_at_once(capsys):
    with stop_on_signals("hb", announce=False) as flag:
        assert not flag
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # the same request, relayed
        assert flag.signum == signal.SIGTERM
        time.sleep(1.2)
        with pytest.raises(Stopped) as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)  # (the handler runs between bytecodes)
    assert stop.value.exit_status == 143 and not stop.value.said
    assert capsys.readouterr().err == ""  # DDP ranks keep quiet: rank 0 says the one line
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_announced_in_one_process(capsys):
    with stop_on_signals("hb") as flag:
        os.kill(os.getpid(), signal.SIGINT)
    assert flag.signum == signal.SIGINT
    assert capsys.readouterr().err.startswith("hb: SIGINT received, checkpointing after this step")


def test_a_signal_inherited_ignored_stays_ignored():
    """A background job of a script starts with SIGINT ignored (POSIX); training, like the rest
    of a run, honours that, while SIGTERM still checkpoints and stops."""
    import signal

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_on_signals("hb", announce=False) as flag:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
            signal.raise_signal(signal.SIGINT)
            assert not flag
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
