"""The stream processors. Each module installs its agents on an app with `install(...)`;
`app.worker.create_app` wires them, so nothing here holds a global app."""
