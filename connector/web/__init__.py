"""The bookkeeper's pages inside `ccm serve`: users and roles, sessions, and the pages themselves."""
