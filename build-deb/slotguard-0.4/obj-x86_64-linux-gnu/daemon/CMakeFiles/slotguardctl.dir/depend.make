# Empty dependencies file for slotguardctl.
# This may be replaced when dependencies are built.
