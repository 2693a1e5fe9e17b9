import { SignInForm } from "./form";

export default function SignInPage() {
  return <SignInForm />;
}
