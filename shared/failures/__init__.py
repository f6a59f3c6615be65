"""What a failure is and what becomes of it: typed errors, the retry policy, the account pause."""
