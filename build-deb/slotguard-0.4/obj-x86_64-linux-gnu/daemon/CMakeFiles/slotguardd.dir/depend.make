# Empty dependencies file for slotguardd.
# This may be replaced when dependencies are built.
