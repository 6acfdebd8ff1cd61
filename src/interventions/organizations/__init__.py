"""Membership of organisations: invitations, accepted by the invited person."""
