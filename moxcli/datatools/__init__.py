"""Data tools: backup, verifydata and gentestdata (spec §7).

Names shared by the three tools: the version file a backup or generated data dir carries,
the marker of an unfinished backup, and where ``verifydata --fix`` moves files to.
"""

VERSION_FILE = "moxcliversion"
INCOMPLETE_MARKER = "BACKUP-INCOMPLETE"
MOVED_DIR = "moved"
