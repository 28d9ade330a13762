"""Assessment figures (考核激励): daily roll-ups, the figures and their definitions, rankings,
monitoring, the district map and the monthly report."""
