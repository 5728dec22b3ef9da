//! Passwords: from an environment variable or typed at the terminal without echo, never from the
//! command line, where `ps` and the shell history would show them.

use super::failure::Failure;

/// The value of `variable` when it is set, else asks for it on the terminal. With `confirm`, it
/// is asked twice, as ONTAP does for a password that is about to be stored.
pub fn from_env_or_prompt(variable: &str, prompt: &str, confirm: bool) -> Result<String, Failure> {
    if let Some(value) = std::env::var_os(variable) {
        return value
            .into_string()
            .map_err(|_| Failure::Usage(format!("{variable} is not valid UTF-8")));
    }
    let password = ask(prompt, variable)?;
    if confirm && ask("Reenter the password: ", variable)? != password {
        return Err(Failure::Usage("the passwords do not match".into()));
    }
    Ok(password)
}

/// Reads one line from the terminal without echo. Without a terminal (a script, a pipe) there is
/// nobody to ask: the message says which variable to set instead.
fn ask(prompt: &str, variable: &str) -> Result<String, Failure> {
    rpassword::prompt_password(prompt).map_err(|error| {
        Failure::Usage(format!(
            "cannot ask for the password on the terminal ({error}); set {variable} instead"
        ))
    })
}
