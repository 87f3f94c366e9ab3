"""The pieces every console page is rendered with."""

from datetime import datetime

import pytest

from exchange.console.pages import human, label, when


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        ("2026-12-01T09:30:59Z", "2026-12-01 09:30 UTC"),
        ("2026-12-01T17:30:00+08:00", "2026-12-01 09:30 UTC"),
        (datetime(2026, 12, 1, 9, 30), "2026-12-01 09:30 UTC"),  # the database's naive UTC
        (None, "—"),
        ("", "—"),
    ],
)
def test_times_read_in_utc_to_the_minute(moment, shown):
    assert when(moment) == shown


def test_labels_escape_both_languages():
    assert (
        str(label("<b>", "批准&")) == '&lt;b&gt; <span class="zh" lang="zh-Hans">批准&amp;</span>'
    )


def test_snake_case_reads_as_words_and_stays_escaped():
    assert str(human("law_enforcement")) == "law enforcement"
    assert str(human("<x>_y")) == "&lt;x&gt; y"
