"use server";
import { redirect } from "next/navigation";
import { endSession, passwordOk, startSession } from "@/lib/auth";

export async function signInAction(_prev: string | null, form: FormData): Promise<string | null> {
  const password = String(form.get("password") ?? "");
  if (!passwordOk(password)) return "That password is not right.";
  await startSession();
  redirect("/dashboard");
}

export async function signOutAction(): Promise<void> {
  await endSession();
  redirect("/sign-in");
}
