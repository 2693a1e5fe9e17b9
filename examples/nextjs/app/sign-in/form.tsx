"use client";
import { useActionState } from "react";
import { signInAction } from "@/actions/auth-actions";

export function SignInForm() {
  const [error, action, pending] = useActionState(signInAction, null);
  return (
    <form className="signin" action={action} data-testid="signin-form">
      <h1>Sign in</h1>
      <label htmlFor="password">Password</label>
      <input id="password" name="password" type="password" autoComplete="current-password" required />
      <button type="submit" disabled={pending}>
        Sign in
      </button>
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : null}
    </form>
  );
}
