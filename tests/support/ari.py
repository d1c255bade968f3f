"""ARI as Asterisk 22 sends it, for tests of our client's models and events."""

from __future__ import annotations

#: A caller's channel in Stasis, every field as Asterisk sends it.
CHANNEL = {
    "id": "1732440000.1", "name": "PJSIP/trunk-00000001", "state": "Ring", "protocol_id": "abc",
    "caller": {"name": "", "number": "13800138000"}, "connected": {"name": "", "number": ""},
    "accountcode": "", "creationtime": "2026-11-24T10:00:00.000+0000", "language": "zh_CN",
    "dialplan": {"context": "from-pstn", "exten": "12365", "priority": 3,
                 "app_name": "Stasis", "app_data": "hotline,12365,quality,"},
}
