"""One clock (issue 29 point 4): every date and time the portal shows, its pages and Django admin
alike, in one format with the zone's name (TIME_ZONE), as static/portal/clock.js writes them in the
browser. Django reads these through FORMAT_MODULE_PATH in place of its own en-GB formats."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i T"
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
