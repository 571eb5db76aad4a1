# Inner scenario: do nothing (boot-time measurements end here).
exit 0
