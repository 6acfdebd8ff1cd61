"""Company contacts: the people of a provider that interventions are assigned to."""
