"""Where a run claims the event that started it: claims/<sha256 of what identifies the event> in its stack's bucket.

lambda/claim_event creates the object (a conditional write: the first run for an event goes ahead); lambda/
release_claim deletes a version's claim when its approval is withdrawn, and lambda/stop_run_jobs the claim of a
run that did not succeed, so the same cause can start a run again.
Standard library only.
"""
import hashlib

CLAIMS = "claims/"
# Model Package State Change statuses that withdraw an approval and so release the version's claim.
WITHDRAWN = ("Rejected", "PendingManualApproval")


def claim_key(identity: str) -> str:
    return f"{CLAIMS}{hashlib.sha256(identity.encode()).hexdigest()}"
