"""Asterisk's CDR file as a real Asterisk 22.10.1 wrote it, with the calls in it.

``tests/callrecords/data/hotline-cdr-asterisk-22.10.1.csv`` was written by Asterisk 22.10.1
running ``dialplans/extensions.conf`` and ``dialplans/cdr_custom.conf``, with SIP callers (sipp)
on the carrier trunk and agent 1001 a SIP phone in the fallback queue.
"""

from __future__ import annotations

from pathlib import Path

CAPTURE = Path(__file__).resolve().parents[1] / "callrecords" / "data" / "hotline-cdr-asterisk-22.10.1.csv"
LINES = CAPTURE.read_text(encoding="utf-8").splitlines(keepends=True)

#: Asterisk's uniqueid of each captured call (the caller's channel).
ANSWERED = "1796507615.38"            # 057112315 from 13800138000, agent 1001 answered
ABANDONED_QUEUED = "1796507625.40"    # 01012365, hung up while the queue rang 1001
TIMEOUT = "1796507631.42"             # 075512358, three lines: two ring attempts, then TIMEOUT
JOINEMPTY = "1796507644.45"           # 02912330, nobody in the queue
ABANDONED_APOLOGY = "1796507649.46"   # 12315, hung up during the apology
INVALID_AREA = "1796507651.47"        # 057112399: not one of ours
INVALID = "1796507655.48"             # 110

#: Two more real lines of Asterisk 22.10.1 with the same layout: an agent's leg (a Local
#: channel playing the agent) and the caller of that call, which the application had not
#: marked: calls the application served itself look like this, and are not imported.
UNMARKED = (
    '"hotline-cdr-1","1796507547.22","1796507546.20","24","1796507547.785196","1796507547.785372",'
    '"1796507550.288076","ANSWERED","sipp","agent","sim-agents","Local/agent@sim-agents-00000006;2","","Hangup",'
    '"","","","","","",""\n'
)
