"""`perseus capacity`: how much load fits under every SLA, alone and co-located, and who hurts whom."""
