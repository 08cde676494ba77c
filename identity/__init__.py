"""Known users: identify (linking visitors to a user, merging profiles), aliases, trait schema.

Also home of the CSV/CDNOW import command: bringing outside history in under known ids.
"""
