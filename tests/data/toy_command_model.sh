#!/bin/sh
# The `linear` toy model as an external program, for the `command` model's tests:
# called as `toy_command_model.sh intercept=A slope=B`, prints y = A + B t for
# t = 0..20 as CSV. It hangs (sleeps 30 s) for intercept > 1.6, inside the
# posterior of toy_linear.csv but outside toy_command.toml's starting ball, so
# that a run meets timeouts.
a=${1#intercept=}; b=${2#slope=}
if awk -v a="$a" 'BEGIN { exit !(a > 1.6) }'; then sleep 30; fi
awk -v a="$a" -v b="$b" 'BEGIN { print "time,y"; for (t = 0; t <= 20; t++) printf "%d,%.17g\n", t, a + b * t }'
