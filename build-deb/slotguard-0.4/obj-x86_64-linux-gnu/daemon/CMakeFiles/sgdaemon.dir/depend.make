# Empty dependencies file for sgdaemon.
# This may be replaced when dependencies are built.
