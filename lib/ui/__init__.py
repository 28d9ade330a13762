"""Streamlit helpers shared by pages: page guard, login, sidebar menu."""
