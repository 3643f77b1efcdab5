# Empty dependencies file for sgservice.
# This may be replaced when dependencies are built.
