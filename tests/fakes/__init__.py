"""Fake upstream servers (see runner.FakeUpstream)."""


def __getattr__(name: str):
    # lazy, so `python -m tests.fakes.openai_server` does not import httpx
    if name == "FakeUpstream":
        from tests.fakes.runner import FakeUpstream

        return FakeUpstream
    raise AttributeError(name)


__all__ = ["FakeUpstream"]
