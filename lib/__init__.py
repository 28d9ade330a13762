"""The domain of the safe-community platform. Imports no streamlit."""
