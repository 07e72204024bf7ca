"""Who is calling and what they may do: caller identity, the JWT authorizer, access rules, ownerOnly."""
