"""Stage 2, draws: freeze, confirm and lock a joint task's target draw, and quick draws.

`algorithm` is the pure, verifiable selection; `pool` builds who may be drawn; `beacon` checks
the public beacon; `targets` freezes and locks a task's draw; `verify` recomputes any draw from
what is public; `quickdraw` runs ad-hoc draws outside a joint task.
"""
