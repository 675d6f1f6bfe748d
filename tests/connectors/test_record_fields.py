"""Reading vendor values into SourceRecord fields."""

import pytest

from connectors.record_fields import iso_region


@pytest.mark.parametrize(
    ("written", "region"),
    [("GB", "GB"), (" gb ", "GB"), ("", ""), (None, ""), ("Germany", ""), ("XX", ""), (44, "")],
)
def test_a_country_is_kept_only_as_an_iso_code(written, region):
    assert iso_region(written) == region
    assert iso_region(written) == region  # the second time from the cache
