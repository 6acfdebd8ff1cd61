"""Membership of organisations: profiles (``profiles``; admins change them, ``dependencies``)
and invitations (``service``), accepted by the invited person."""
