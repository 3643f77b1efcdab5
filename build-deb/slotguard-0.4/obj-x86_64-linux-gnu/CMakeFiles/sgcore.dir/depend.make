# Empty dependencies file for sgcore.
# This may be replaced when dependencies are built.
