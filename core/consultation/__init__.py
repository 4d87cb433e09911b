"""Stage 1, consultation: task creation, invitations, answers and expiry
(seeds 000 §五–§七, 001 第十四条).

draft → consulting (seed committed, invitations out) → ready (every invitation answered or
expired). `creation` makes the draft task; `opening` commits the seed, sends the invitations and
closes the consultation once nothing is pending; `answers` holds who may answer, accept and
decline, and the answer page; `expiry` expires the silent ones. Every service mutates rows, then
calls `record` once per state change in the same session; the caller commits. Refusals raise a
DomainError and change nothing.
"""
