from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gw._fast.select import SmoothWeighted

weight_lists = st.lists(st.integers(1, 20), min_size=1, max_size=8)


def picks(sw: SmoothWeighted, n: int, excluded: int = 0) -> list[int]:
    return [sw.pick(excluded) for _ in range(n)]


def test_weights_two_to_one_interleave_as_nginx_does() -> None:
    sw = SmoothWeighted([2, 1])
    assert picks(sw, 9) == [0, 1, 0] * 3


def test_nginx_example_five_one_one_is_spread_out() -> None:
    # The example in nginx's commit introducing smooth weighted round-robin.
    sw = SmoothWeighted([5, 1, 1])
    assert picks(sw, 7) == [0, 0, 1, 0, 2, 0, 0]


@given(weight_lists, st.integers(1, 4))
def test_every_cycle_of_sum_weights_picks_holds_each_target_weight_times(
    weights: list[int], cycles: int
) -> None:
    sw = SmoothWeighted(weights)
    total = sum(weights)
    for _ in range(cycles):
        counts = Counter(picks(sw, total))
        assert [counts[i] for i in range(len(weights))] == weights


@given(weight_lists.filter(lambda ws: len(ws) >= 2), st.data())
def test_with_one_target_excluded_the_others_keep_exact_proportions(
    weights: list[int], data: st.DataObject
) -> None:
    out = data.draw(st.integers(0, len(weights) - 1))
    rest = [i for i in range(len(weights)) if i != out]
    sw = SmoothWeighted(weights)
    if data.draw(st.booleans()):
        picks(sw, sum(weights))  # a full cycle first brings the state back to zero
    total = sum(weights[i] for i in rest)
    for _ in range(3):
        counts = Counter(picks(sw, total, excluded=1 << out))
        assert out not in counts
        assert {i: counts[i] for i in rest} == {i: weights[i] for i in rest}


def test_an_excluded_target_keeps_its_place_in_the_rotation() -> None:
    sw = SmoothWeighted([1, 1])
    assert sw.pick() == 0
    assert sw.pick(excluded=0b10) == 0
    # Target 1 kept its credit while excluded, so it comes next.
    assert picks(sw, 4) == [1, 0, 1, 0]


def test_all_targets_excluded_picks_minus_one() -> None:
    sw = SmoothWeighted([3, 1, 2])
    assert sw.pick(excluded=0b111) == -1
    assert sw.pick(excluded=(1 << 64) - 1) == -1
    assert picks(sw, 6) == picks(SmoothWeighted([3, 1, 2]), 6)  # the state was not touched


def test_mask_bits_beyond_the_targets_are_ignored() -> None:
    assert picks(SmoothWeighted([2, 1]), 3, excluded=1 << 63) == [0, 1, 0]


def test_sixty_four_targets_are_allowed_and_the_last_one_can_be_excluded() -> None:
    sw = SmoothWeighted([1] * 64)
    assert sorted(picks(sw, 64)) == list(range(64))
    assert 63 not in picks(sw, 126, excluded=1 << 63)


def test_size_and_weights_are_read_only_attributes() -> None:
    sw = SmoothWeighted([4, 2])
    assert sw.size == 2
    assert sw.weights == (4, 2)
    with pytest.raises(AttributeError):
        sw.weights = (1, 1)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        sw.size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "weights",
    [[], [0], [1, -1], [1] * 65, [1.5], ["2"], [True], None, 3, [2**32]],
)
def test_invalid_weights_raise_value_error(weights: object) -> None:
    with pytest.raises(ValueError):
        SmoothWeighted(weights)
